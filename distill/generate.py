"""Teacher generation is an eval run: ``harness.runner.evaluate`` over training-source tasks.

So teacher samples are persisted the moment they exist, resumable (re-running on the same run dir skips finished
samples) and already scored by the shared verifiers, whatever the backend: llamacpp/hf for local models, vllm on a
GPU node, or openai for a served DeepSeek-R1 (``backend: openai`` + ``backend_options: {base_url: ...}``).
There is no second generation loop here. ``backend: programmatic`` is the worked-solution teacher of
``distill/teacher.py`` (the CPU demo's), registered with the harness runner here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import PAPER_GENERATION
from harness.errors import UserError
from harness.runner import EvalSpec, evaluate
from harness.store import RunStore, atomic_write_json
from training.curation import load_records

from .teacher import register as _register_programmatic_teacher

_register_programmatic_teacher()


@dataclass
class TeacherConfig:
    model: str = "embedded"
    backend: str = "llamacpp"
    tasks: list[str] = field(default_factory=lambda: ["math500"])
    n: int | None = 1  # samples per problem (rejection sampling keeps the correct ones of these)
    limit: int | None = None
    max_tokens: int = PAPER_GENERATION.max_tokens
    temperature: float = PAPER_GENERATION.temperature
    top_p: float = PAPER_GENERATION.top_p
    think_prefix: bool = True
    seed: int = 0
    backend_options: dict[str, Any] = field(default_factory=dict)
    task_options: dict[str, Any] = field(default_factory=dict)
    run_dirs: list[str] = field(default_factory=list)  # existing runs to reuse (e.g. `r1 import`ed R1 samples)
    # prompt datasets (training/datasets.py sources: {hf, path, format, ...}) the teacher answers; each is
    # decontaminated against every benchmark and registered as a task `data_<name>` (training.datasets)
    data: list[Any] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict | None) -> "TeacherConfig":
        d = dict(d or {})
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise UserError(f"recipe teacher: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        if isinstance(d.get("tasks"), str):
            d["tasks"] = [t.strip() for t in d["tasks"].split(",") if t.strip()]
        return cls(**d)


def eval_spec(cfg: TeacherConfig, out: Path, data_dir: str | None = None, progress: bool = False) -> EvalSpec:
    gen = PAPER_GENERATION.with_(max_tokens=cfg.max_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                                 think_prefix=cfg.think_prefix)
    return EvalSpec(tasks=list(cfg.tasks), model=cfg.model, backend=cfg.backend, out=Path(out), gen=gen, n=cfg.n,
                    limit=cfg.limit, seed=cfg.seed, data_dir=data_dir, backend_options=dict(cfg.backend_options),
                    task_options=dict(cfg.task_options), progress=progress)


def generate(cfg: TeacherConfig, out: Path, data_dir: str | None = None, progress: bool = False) -> list[Path]:
    """Run (or resume) the teacher's eval run in ``out``; returns every source run dir (given ones + this one)."""
    dirs = [Path(d) for d in cfg.run_dirs]
    for d in dirs:
        RunStore(d).read_manifest()  # fail now on a path that is not a run dir
    if cfg.data:
        from training.datasets import register_prompt_sources

        names, reports = register_prompt_sources(cfg.data, where="teacher.data", data_dir=data_dir)
        Path(out).mkdir(parents=True, exist_ok=True)  # the record of what was read and what decontamination dropped
        atomic_write_json(Path(out) / "teacher_data.json", reports)
        cfg = TeacherConfig(**{**cfg.__dict__, "tasks": list(cfg.tasks) + names, "data": []})
    if cfg.tasks:
        evaluate(eval_spec(cfg, out, data_dir, progress))
        dirs.append(Path(out))
    if not dirs:
        raise UserError("recipe teacher: give data (prompt datasets) or tasks to generate, or run_dirs of existing "
                        "teacher runs")
    return dirs


def load_teacher_records(run_dirs: list[Path]) -> list[dict]:
    """Every sample record of the source runs (verdicts merged), tagged with the run dir it came from."""
    return load_records(run_dirs)
