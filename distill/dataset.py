"""Kept teacher samples -> SFT chat examples, written as jsonl with a manifest.

The user turn is rebuilt with the task's own ``prompt(problem, seed)`` and the source run's generation settings
(system prompt, "<think>\\n" prefix), and checked against the ``prompt_hash`` stored in the record: the student is
trained on exactly the prompt the teacher answered, or the build stops (a changed prompt template would otherwise
teach answers to questions that were never asked). The assistant turn is the completion as generated, "<think>"
block and summary included; ``format: readable`` rewrites it to the paper's cold-start format
``|special_token|<reasoning_process>|special_token|<summary>``.
"""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.config import THINK_PREFIX
from harness.errors import UserError
from harness.models import file_sha256
from harness.runner import configure_task, planned_problems, prompt_hash
from harness.store import RunStore, atomic_write_json, atomic_write_text, now
from harness.task import Problem, get_task, sample_seed
from harness.verifiers.base import split_think

FORMATS = ("think", "readable")
PAPER_SPECIAL_TOKEN = "|special_token|"
DATASET_FILE = "dataset.jsonl"
MANIFEST_FILE = "manifest.json"


def readable(completion: str, special_token: str = PAPER_SPECIAL_TOKEN) -> str:
    """The paper's cold-start output format: |special_token|<reasoning_process>|special_token|<summary>."""
    reasoning, summary = split_think(completion)
    return f"{special_token}{(reasoning or '').strip()}{special_token}{(summary or '').strip()}"


class _RunContext:
    """What rebuilding one source run's prompts needs: its manifest, generation settings and problems."""

    def __init__(self, run_dir: str, data_dir: str | None):
        self.store = RunStore(Path(run_dir))
        self.manifest = self.store.read_manifest()
        gen = self.manifest.get("generation") or {}
        self.system_prompt = gen.get("system_prompt")
        self.prefix = THINK_PREFIX if gen.get("think_prefix", True) else ""
        self.seed = int(self.manifest.get("seed") or 0)
        self.data_dir = data_dir or self.manifest.get("data_dir")
        self._problems: dict[str, dict[str, Problem]] = {}

    def problem(self, task_name: str, pid: str) -> Problem:
        if task_name not in self._problems:
            task = get_task(task_name)
            tman = (self.manifest.get("tasks") or {}).get(task_name, {})
            configure_task(task, tman.get("options") or {})
            tman = {**tman, "source": self.manifest.get("source"), "limit": None}  # every problem is reachable
            self._problems[task_name] = {p.id: p for p in planned_problems(task, tman, self.store, self.data_dir)}
        probs = self._problems[task_name]
        if pid not in probs:
            raise UserError(f"{self.store.root}: problem {pid!r} is not in task {task_name}'s data")
        return probs[pid]


def build_examples(records: list[dict], data_dir: str | None = None, fmt: str = "think",
                   special_token: str = PAPER_SPECIAL_TOKEN) -> tuple[list[dict], dict[str, int]]:
    """Chat examples for the kept records, and prompt-check counts {"matched": n, "unchecked": n}.

    Records carry ``_run_dir`` (set by ``generate.load_teacher_records``). Imported runs may have no prompt_hash
    (another tool generated them): their prompts are rebuilt the same way and counted as unchecked."""
    if fmt not in FORMATS:
        raise UserError(f"dataset format {fmt!r}: choose one of {', '.join(FORMATS)}")
    contexts: dict[str, _RunContext] = {}
    checks = {"matched": 0, "unchecked": 0}
    examples = []
    for r in records:
        run = r.get("_run_dir")
        if not run:
            raise UserError("build_examples: record without _run_dir (load records with generate.load_teacher_records)")
        ctx = contexts.get(run) or contexts.setdefault(run, _RunContext(run, data_dir))
        task, pid, idx = r["task"], str(r["problem_id"]), int(r["sample_idx"])
        seed = int(r["seed"]) if r.get("seed") is not None else sample_seed(ctx.seed, task, pid, idx)
        msgs = list(get_task(task).prompt(ctx.problem(task, pid), seed).messages)
        if ctx.system_prompt:
            msgs = [{"role": "system", "content": ctx.system_prompt}] + msgs
        if r.get("prompt_hash"):
            h = prompt_hash(msgs, ctx.prefix)
            if h != r["prompt_hash"]:
                raise UserError(f"{run}: {task}/{pid}#{idx}: the rebuilt prompt hashes to {h}, the generated one to "
                                f"{r['prompt_hash']}: the task's prompt changed since generation; regenerate")
            checks["matched"] += 1
        else:
            checks["unchecked"] += 1
        completion = r.get("completion") or ""
        if fmt == "readable":
            completion = readable(completion, special_token)
        elif ctx.prefix and not completion.startswith(ctx.prefix):
            completion = ctx.prefix + completion  # imported runs store the text after the prefix
        examples.append({"messages": msgs + [{"role": "assistant", "content": completion}],
                         "source": {"run": run, "task": task, "problem_id": pid, "sample_idx": idx,
                                    "verdict": r.get("verdict")}})
    return examples, checks


def source_summary(run_dirs: list[Path]) -> list[dict[str, Any]]:
    out = []
    for d in run_dirs:
        store = RunStore(Path(d))
        man = store.read_manifest()
        out.append({"run_dir": str(Path(d).resolve()), "model": man.get("model"), "backend": man.get("backend"),
                    "tasks": sorted((man.get("tasks") or {}).keys()), "generation": man.get("generation"),
                    "samples_sha256": file_sha256(store.samples_path) if store.samples_path.exists() else None,
                    "manifest_sha256": file_sha256(store.manifest_path)})
    return out


def write_dataset(examples: list[dict], out: Path, run_dirs: list[Path], filter_report: dict, prompt_checks: dict,
                  fmt: str, extra: dict | None = None) -> dict:
    """``out/dataset.jsonl`` + ``out/manifest.json``; returns the manifest."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples)
    atomic_write_text(out / DATASET_FILE, text)
    per_task: dict[str, int] = defaultdict(int)
    for e in examples:
        per_task[e["source"]["task"]] += 1
    manifest = {
        "created": now(),
        "format": fmt,
        "n_examples": len(examples),
        "per_task": dict(sorted(per_task.items())),
        "n_problems": len({(e["source"]["task"], e["source"]["problem_id"]) for e in examples}),
        "dataset_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "sources": source_summary(run_dirs),
        "filters": filter_report,
        "prompt_checks": prompt_checks,
        **(extra or {}),
    }
    atomic_write_json(out / MANIFEST_FILE, manifest)
    return manifest


def load_dataset(path: Path) -> list[dict]:
    """The chat examples of a dataset dir (or jsonl file), as run_sft takes them: {"messages": [...]}."""
    p = Path(path)
    if p.is_dir():
        p = p / DATASET_FILE
    with open(p, encoding="utf-8") as f:
        return [{"messages": json.loads(line)["messages"]} for line in f if line.strip()]
