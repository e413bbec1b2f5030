"""Decontamination: training and teacher rows are checked against every benchmark task's problems before anything
trains on them.

The check is open-r1's ``scripts/decontaminate.py`` (after s1): text normalised to lower case with whitespace
collapsed, word n-grams (default n = 8), and a row is contaminated by a benchmark when any of its n-grams occurs in
any of that benchmark's problems. Two additions: a benchmark problem shorter than n words (e.g. ``Compute 3 + 4.``)
has no n-gram, so its whole normalised text is matched exactly; and ids - a row that names a benchmark problem
(``task`` + ``problem_id``, as teacher records do, or a non-numeric ``id`` equal to a benchmark's problem id such as
``test/algebra/1.json`` or ``2024-I-1``) is contaminated whatever its text.

The index of every task in ``harness.task.registry()`` is built once and cached on disk under
``$R1_CACHE_DIR/decontam/`` keyed by n and a hash of each task's (id, question) pairs, so a changed data file makes
a new index and an unchanged one loads in well under a second. Tasks whose data is missing are listed as
``unchecked`` in the report (never silently skipped). Benchmark text never leaves this module: reports carry task
names, counts and ids only (GPQA's terms).

    kept, report = decontaminate(rows)            # rows: {"problem": text, "id": ..., optional "task"}
    report["by_benchmark"]   # {"math500": 3, ...}: rows dropped per benchmark (a row can count under several)
"""
from __future__ import annotations

import hashlib
import logging
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from harness.errors import DataMissing, UserError

log = logging.getLogger("r1.training.decontam")

DEFAULT_NGRAM = 8  # open-r1 scripts/decontaminate.py --ngram_size default
INDEX_VERSION = 1


def normalize(text: str) -> str:
    """open-r1's normalize_string: lower case, whitespace runs collapsed to one space."""
    return " ".join(str(text).lower().split())


def word_ngrams(text: str, n: int) -> set[str]:
    words = normalize(text).split()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def _distinctive(pid: str) -> bool:
    """Ids worth matching across datasets: not a bare row index (every dataset has a row "0")."""
    return bool(pid) and not pid.isdigit()


@dataclass
class BenchmarkIndex:
    n: int
    tasks: list[str]  # bit i of a mask = tasks[i]
    ngrams: dict[str, int] = field(default_factory=dict)
    exact: dict[str, int] = field(default_factory=dict)  # normalised text of problems shorter than n words
    ids: dict[str, int] = field(default_factory=dict)  # distinctive problem id -> tasks having it
    task_ids: dict[str, set] = field(default_factory=dict)  # task -> all its problem ids (records name their task)
    unchecked: dict[str, str] = field(default_factory=dict)  # task -> why it is not in the index
    key: str = ""
    cached: bool = False
    seconds: float = 0.0

    def names(self, mask: int) -> list[str]:
        return [t for i, t in enumerate(self.tasks) if mask >> i & 1]


_LOADED: dict[tuple, tuple[dict[str, list], dict[str, str]]] = {}


def _task_problems(names: Iterable[str] | None, data_dir) -> tuple[dict[str, list], dict[str, str]]:
    """{task: [(id, question)]} of the benchmarks, read once per process (the disk cache key hashes them)."""
    from harness.data import data_dir as resolve_data_dir
    from harness.task import registry

    reg = registry()
    memo_key = (tuple(sorted(names)) if names is not None else tuple(sorted(reg)), str(resolve_data_dir(data_dir)))
    if memo_key not in _LOADED:
        _LOADED[memo_key] = _read_task_problems(names, data_dir, reg)
    problems, unchecked = _LOADED[memo_key]
    return problems, dict(unchecked)


def _read_task_problems(names, data_dir, reg) -> tuple[dict[str, list], dict[str, str]]:
    problems: dict[str, list] = {}
    unchecked: dict[str, str] = {}
    for name in sorted(names if names is not None else reg):
        task = reg[name]
        if getattr(task, "from_dataset", False):
            continue  # a training dataset registered as a task in this process, not a benchmark
        try:
            problems[name] = [(str(p.id), p.question or "") for p in task.problems(data_dir)]
        except DataMissing as e:
            unchecked[name] = f"data missing: {str(e)[:160]}"
        except Exception as e:  # noqa: BLE001 - one broken task module must not hide the others
            unchecked[name] = f"could not load ({type(e).__name__}: {str(e)[:120]})"
    return problems, unchecked


def _index_key(n: int, problems: Mapping[str, list]) -> str:
    h = hashlib.sha256(f"v{INDEX_VERSION}\x1f{n}".encode())
    for name in sorted(problems):
        h.update(f"\x1e{name}".encode())
        for pid, q in problems[name]:
            h.update(f"\x1f{pid}\x1d{q}".encode())
    return h.hexdigest()[:24]


def _cache_root() -> Path:
    from harness.models import _cache_dir

    return _cache_dir() / "decontam"


_MEMO: dict[str, BenchmarkIndex] = {}


def benchmark_index(n: int = DEFAULT_NGRAM, data_dir=None, tasks: Iterable[str] | None = None,
                    cache: bool = True) -> BenchmarkIndex:
    """The n-gram index of every benchmark task (or ``tasks``), from the disk cache when its data is unchanged."""
    t0 = time.perf_counter()
    problems, unchecked = _task_problems(tasks, data_dir)
    key = _index_key(n, problems)
    if key in _MEMO:
        idx = _MEMO[key]
        idx.unchecked = unchecked
        return idx
    path = _cache_root() / f"index-{key}.pkl"
    if cache and path.is_file():
        try:
            with open(path, "rb") as f:
                idx = pickle.load(f)
            if isinstance(idx, BenchmarkIndex) and idx.key == key:
                idx.cached, idx.unchecked, idx.seconds = True, unchecked, round(time.perf_counter() - t0, 3)
                _MEMO[key] = idx
                return idx
        except Exception:  # noqa: BLE001 - a corrupt cache file is rebuilt
            log.warning("decontamination index cache %s unreadable; rebuilding", path)
    names = sorted(problems)
    idx = BenchmarkIndex(n=n, tasks=names, unchecked=unchecked, key=key)
    for i, name in enumerate(names):
        bit = 1 << i
        idx.task_ids[name] = {pid for pid, _ in problems[name]}
        for pid, q in problems[name]:
            if _distinctive(pid):
                idx.ids[pid] = idx.ids.get(pid, 0) | bit
            grams = word_ngrams(q, n)
            if grams:
                for g in grams:
                    idx.ngrams[g] = idx.ngrams.get(g, 0) | bit
            elif q.strip():
                t = normalize(q)
                idx.exact[t] = idx.exact.get(t, 0) | bit
    idx.seconds = round(time.perf_counter() - t0, 3)
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                pickle.dump(idx, f, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(path)
        except OSError as e:
            log.warning("could not cache the decontamination index at %s: %s", path, e)
    _MEMO[key] = idx
    return idx


def row_matches(text: str | None, pid: str | None, task: str | None, idx: BenchmarkIndex,
                skip_mask: int = 0) -> dict[str, str]:
    """{benchmark: how} for one row; how = "id" | "exact_text" | "ngram"."""
    out: dict[str, str] = {}

    def add(mask: int, how: str):
        for name in idx.names(mask & ~skip_mask):
            out.setdefault(name, how)

    if pid is not None:
        pid = str(pid)
        if task is not None and task in idx.task_ids:
            if pid in idx.task_ids[task]:
                add(1 << idx.tasks.index(task), "id")
        elif _distinctive(pid) and pid in idx.ids:
            add(idx.ids[pid], "id")
    if text:
        t = normalize(text)
        if t in idx.exact:
            add(idx.exact[t], "exact_text")
        mask = 0
        for g in word_ngrams(text, idx.n):
            m = idx.ngrams.get(g)
            if m:
                mask |= m
        if mask:
            add(mask, "ngram")
    return out


def _questions(task: str, data_dir, memo: dict) -> dict[str, str]:
    if task not in memo:
        from harness.task import get_task

        try:
            memo[task] = {str(p.id): p.question or "" for p in get_task(task).problems(data_dir)}
        except (UserError, DataMissing):
            memo[task] = {}
    return memo[task]


def decontaminate(rows: Sequence[Mapping[str, Any]], *, n: int = DEFAULT_NGRAM, data_dir=None,
                  text_key: str = "problem", id_key: str = "id", task_key: str = "task",
                  exclude_tasks: Sequence[str] = (), tasks: Iterable[str] | None = None,
                  index: BenchmarkIndex | None = None) -> tuple[list, dict[str, Any]]:
    """Rows without overlap with any benchmark, and the report (counts per benchmark and per kind of match).

    A row's text is ``row[text_key]``; its identity ``row[id_key]`` and, when it came from a harness task (teacher
    records: ``task`` / ``problem_id``), ``row[task_key]``. ``exclude_tasks``: benchmarks not checked (the recipe
    explicitly trains on them: ``allow_train_on_eval``); they are named in the report."""
    t0 = time.perf_counter()
    idx = index or benchmark_index(n, data_dir, tasks)
    unknown = [t for t in exclude_tasks if t not in idx.tasks and t not in idx.unchecked]
    if unknown:
        raise UserError(f"decontamination: exclude_tasks names unknown benchmark(s) {', '.join(unknown)}")
    skip = 0
    for t in exclude_tasks:
        if t in idx.tasks:
            skip |= 1 << idx.tasks.index(t)
    kept, dropped_ids = [], []
    by_benchmark: dict[str, int] = {}
    by_match: dict[str, int] = {}
    questions: dict[str, dict[str, str]] = {}
    for r in rows:
        pid = r.get(id_key) if r.get(id_key) is not None else r.get("problem_id")
        text, task = r.get(text_key), r.get(task_key)
        if text is None and task is not None and pid is not None:  # teacher records do not store the question
            text = _questions(task, data_dir, questions).get(str(pid))
        m = row_matches(text, pid, task, idx, skip)
        if not m:
            kept.append(r)
            continue
        dropped_ids.append(str(pid) if pid is not None else "?")
        for bench, how in m.items():
            by_benchmark[bench] = by_benchmark.get(bench, 0) + 1
            by_match[how] = by_match.get(how, 0) + 1
    report = {
        "ngram": idx.n, "input": len(rows), "kept": len(kept), "dropped": len(rows) - len(kept),
        "by_benchmark": dict(sorted(by_benchmark.items())), "by_match": dict(sorted(by_match.items())),
        "dropped_ids": dropped_ids[:50], "benchmarks": [t for t in idx.tasks if t not in exclude_tasks],
        "excluded": list(exclude_tasks), "unchecked": dict(idx.unchecked),
        "index": {"key": idx.key, "cached": idx.cached, "build_or_load_s": idx.seconds, "ngrams": len(idx.ngrams)},
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return kept, report


def check_train_on_eval(trains_on: Mapping[str, str], eval_tasks: Iterable[str], allow: bool) -> None:
    """Refuse a recipe that trains on a benchmark task it also evaluates on. ``trains_on``: {task: recipe key}."""
    evals = set(eval_tasks)
    clash = [(t, k) for t, k in trains_on.items() if t in evals]
    if clash and not allow:
        t, k = clash[0]
        raise UserError(f"{k}={t} trains on benchmark {t}, which the recipe also evaluates (eval.tasks includes {t}):"
                        f" the score would be contaminated. Point {k} at a training dataset, drop {t} from "
                        f"eval.tasks, or set allow_train_on_eval: true")


__all__ = ["DEFAULT_NGRAM", "BenchmarkIndex", "normalize", "word_ngrams", "benchmark_index", "row_matches",
           "decontaminate", "check_train_on_eval"]
