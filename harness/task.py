"""The task protocol and the registry.

A benchmark is one module in ``tasks/`` that defines ``TASKS``: a list of ``Task`` instances. The registry imports
every module in the ``tasks`` package (glob, no registration calls). A task knows how to load its problems, build the
chat messages for one sample, and score one completion into a ``Verdict`` using a shared verifier.
"""
from __future__ import annotations

import hashlib
import importlib
from collections import defaultdict
import pkgutil
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

from .data import HubSource
from .errors import UserError
from .verifiers.base import Verdict


@dataclass
class Problem:
    id: str
    gold: Any  # what the verifier compares against (answer string, letter, tests...)
    question: str = ""  # main text of the problem (never written to sample records: GPQA forbids publishing it)
    meta: dict[str, Any] = field(default_factory=dict)  # breakdown fields (subject, level, domain, ...) and extras


@dataclass
class Prompt:
    messages: list[dict[str, str]]  # chat messages, rendered with the model's chat template by the backend
    meta: dict[str, Any] = field(default_factory=dict)  # stored in the sample record (e.g. the GPQA permutation)


@dataclass
class ScoreItem:
    problem: Problem
    completion: str
    finish_reason: str
    prompt_meta: dict[str, Any]
    key: tuple | None = None  # (task, problem_id, sample_idx) of a run's sample; graders that persist use it


def sample_seed(run_seed: int, task: str, problem_id: str, sample_idx: int) -> int:
    """Sampling seed of one sample: a pure function of its identity, so a regenerated sample is the same sample."""
    h = hashlib.sha256(f"{run_seed}\x1f{task}\x1f{problem_id}\x1f{sample_idx}".encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def allocate(sizes: dict[str, int], limit: int) -> dict[str, int]:
    """Questions per subject for ``limit`` in all: proportional to size, largest remainder, >= 1 each if possible."""
    subjects = list(sizes)
    take = {s: (1 if limit >= len(subjects) and sizes[s] else 0) for s in subjects}
    rest = limit - sum(take.values())
    room = {s: sizes[s] - take[s] for s in subjects}
    total_room = sum(room.values())
    if rest <= 0 or total_room <= 0:
        return take
    quota = {s: rest * room[s] / total_room for s in subjects}
    for s in subjects:
        take[s] += int(quota[s])
    left = limit - sum(take.values())
    # Largest fractional part first; equal parts go to the earlier subject so the choice never depends on hashing.
    order = sorted(subjects, key=lambda s: (-(quota[s] - int(quota[s])), subjects.index(s)))
    for s in order:
        if left <= 0:
            break
        if take[s] < sizes[s]:
            take[s] += 1
            left -= 1
    return take


def limit_selection(key: str) -> str:
    """The manifest's ``limit_selection`` note for a task whose --limit is stratified by ``key``."""
    return (f"stratified by {key}: a share of --limit proportional to each {key}'s size (largest remainder), at least "
            f"one per {key} when the limit allows, first rows of each {key}")


def stratified_selection(problems: list[Problem], limit: int, key: str = "subject") -> list[Problem]:
    """The first ``allocate(...)[group]`` rows of every group (``meta[key]``), in the task's full order. The sets
    grouped this way (MMLU, MMLU-Pro, MMLU-Redux, C-Eval) are stored sorted by group, so "the first N rows" would be
    the first groups alphabetically."""
    rows: dict[str, list[Problem]] = defaultdict(list)
    for p in problems:
        rows[p.meta[key]].append(p)
    take = allocate({s: len(v) for s, v in rows.items()}, limit)
    keep = {p.id for s, v in rows.items() for p in v[:take[s]]}
    return [p for p in problems if p.id in keep]


class Task:
    """Base class; a benchmark overrides ``load_problems``, ``prompt`` and ``score``."""

    name: ClassVar[str] = ""
    default_k: ClassVar[int] = 1
    cons_k: ClassVar[int | None] = None  # report cons@k at this k (the paper's cons@64 on AIME)
    hub: ClassVar[HubSource | None] = None
    files: ClassVar[Sequence[str]] = ()  # local files, relative to the data dir
    breakdowns: ClassVar[Sequence[str]] = ()  # Problem.meta keys to report per-group pass@1 for
    stop: ClassVar[Sequence[str]] = ()
    # Problem.meta key that --limit stratifies by (sets stored sorted by subject/category, where "the first N rows"
    # would be the first groups alphabetically); None: the first N problems.
    limit_strata: ClassVar[str | None] = None
    # The dataset's authors forbid publishing its questions (GPQA): dry-runs and previews show the prompt with the
    # question withheld; samples, logs and reports never carry it anyway.
    withhold_text: ClassVar[bool] = False

    def __init__(self):
        self.data_hashes: dict[str, str] = {}

    # --- to override -------------------------------------------------------------------------------------------
    def load_problems(self, data_dir=None) -> list[Problem]:
        raise NotImplementedError

    def prompt(self, problem: Problem, seed: int) -> Prompt:
        raise NotImplementedError

    def score(self, item: ScoreItem) -> Verdict:
        raise NotImplementedError

    # --- may override ------------------------------------------------------------------------------------------
    def score_many(self, items: list[ScoreItem]) -> list[Verdict]:
        """Score a batch; tasks with expensive checks (sandbox, sympy) override this to run them in parallel."""
        return [self.score(it) for it in items]

    def extra_results(self, problems: list[Problem], records: list[dict]) -> dict[str, Any]:
        """Task-specific entries for results.json (e.g. Codeforces rating, fallback counts). ``records`` is an
        iterable, not always a list (a streamed run is fed in as it is scored; a second pass re-reads the file):
        prefer one pass, and do not ``len()`` or index it."""
        return {}

    def describe(self) -> dict[str, Any]:
        d = {"hub": self.hub.describe() if self.hub else None, "files": list(self.files), "data_sha256": self.data_hashes}
        if self.limit_strata:
            d["limit_selection"] = limit_selection(self.limit_strata)
        return d

    # --- provided ----------------------------------------------------------------------------------------------
    def problems(self, data_dir=None, limit: int | None = None) -> list[Problem]:
        probs = self.load_problems(data_dir)
        seen = set()
        for p in probs:
            if p.id in seen:
                raise UserError(f"task {self.name}: duplicate problem id {p.id!r} in its data")
            seen.add(p.id)
        if not limit or limit >= len(probs):
            return probs
        return stratified_selection(probs, limit, self.limit_strata) if self.limit_strata else probs[:limit]


_REGISTRY: dict[str, Task] | None = None


def registry() -> dict[str, Task]:
    global _REGISTRY
    if _REGISTRY is None:
        import tasks as pkg

        reg: dict[str, Task] = {}
        for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if mod.name.startswith("_"):
                continue
            module = importlib.import_module(f"tasks.{mod.name}")
            for t in getattr(module, "TASKS", []):
                if t.name in reg:
                    raise RuntimeError(f"task id {t.name!r} defined twice (tasks/{mod.name}.py)")
                reg[t.name] = t
        _REGISTRY = reg
    return _REGISTRY


def get_task(name: str) -> Task:
    reg = registry()
    if name not in reg:
        raise UserError(f"unknown task {name!r}; known tasks: {', '.join(sorted(reg))}")
    return reg[name]


def parse_task_list(spec: str) -> list[Task]:
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise UserError("--task is empty; give one or more task ids separated by commas")
    return [get_task(n) for n in names]
