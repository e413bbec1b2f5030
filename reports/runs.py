"""A run dir as the reports see it: manifest, scored sample records grouped per task and problem, results.json.

Headline numbers (pass@1 and its CI, cons@k, rates, breakdowns, task extras) are the runner's, read from
results.json, so a report shows exactly what ``r1 eval`` / ``r1 score`` computed. What results.json does not hold
(curves over k, length distributions) is derived here from the records with the same harness.metrics functions.
"""
from __future__ import annotations

import json
from array import array
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import metrics
from harness.errors import UserError
from harness.store import RunStore
from harness.tally import cons_at_k_ids

from .paper_tables import resolve_model

CORRECT = "correct"
TRUNCATED = "truncated"


GROUPS = ("correct", "truncated", "incorrect")  # the length plots' verdict groups (report.verdict_group)
_NO = -1


class _Columns:
    """A task's records as compact columns while a run dir streams by (~50 bytes a sample, not the record)."""

    def __init__(self) -> None:
        self.pid: dict[str, int] = {}
        self.prob, self.idx, self.chars, self.key, self.hash = (array("q") for _ in range(5))
        self.tok = array("d")
        self.verdict = array("b")
        self.flags = bytearray()  # bit 0: finish_reason == "length"
        self.verdicts: list[str] = []  # verdict code -> verdict (code -1: unscored)
        self.vcode: dict[str, int] = {}
        self.keys: list[Any] = []
        self.kcode: dict[Any, int] = {}
        self.hashes: list[str] = []
        self.hcode: dict[str, int] = {}
        self.sparse: dict[int, dict] = {}  # row -> {"external": ..., "verdict_detail": {"judge": ...}} when present
        self.finish: dict[int, str] = {}  # row -> finish_reason when not "stop"/"length"

    @staticmethod
    def _code(table: list, codes: dict, value: Any) -> int:
        if value is None:
            return _NO
        try:
            c = codes.get(value)
        except TypeError:  # an unhashable answer key votes by its JSON text, as in harness.tally
            value = json.dumps(value, sort_keys=True, default=str)
            c = codes.get(value)
        if c is None:
            c = codes[value] = len(table)
            table.append(value)
        return c

    def add(self, r: dict) -> None:
        row = len(self.idx)
        pid = str(r["problem_id"])
        self.prob.append(self.pid.setdefault(pid, len(self.pid)))
        self.idx.append(int(r["sample_idx"]))
        v = r.get("verdict")
        self.verdict.append(self._code(self.verdicts, self.vcode, v) if v else _NO)
        tok = r.get("completion_tokens")
        self.tok.append(float(tok) if isinstance(tok, (int, float)) and not isinstance(tok, bool) else float("nan"))
        self.chars.append(len(r.get("completion") or ""))
        self.key.append(self._code(self.keys, self.kcode, r.get("answer_key")))
        self.hash.append(self._code(self.hashes, self.hcode, r.get("prompt_hash")))
        fr = r.get("finish_reason")
        self.flags.append(1 if fr == "length" else 0)
        if fr not in ("stop", "length"):
            self.finish[row] = fr
        extra = {}
        if isinstance(r.get("external"), dict):
            extra["external"] = r["external"]
        judge = (r.get("verdict_detail") or {}).get("judge") if isinstance(r.get("verdict_detail"), dict) else None
        if judge is not None:
            extra["verdict_detail"] = {"judge": judge}
        if extra:
            self.sparse[row] = extra


class TaskRun:
    """One task of a run: per-sample outcomes in numpy columns sorted by (problem id, sample index), so a run of a
    million samples is held in tens of megabytes. ``records``/``scored``/``by_problem`` give light record dicts
    (no completion text) for code that wants records."""

    def __init__(self, name: str, requested_n: int | None, results: dict[str, Any] | None,
                 columns: _Columns | None = None):
        self.name, self.requested_n, self.results = name, requested_n, results
        c = columns or _Columns()
        pids = sorted(c.pid)
        rank = np.empty(len(pids), dtype=np.int64)
        rank[[c.pid[p] for p in pids]] = np.arange(len(pids))
        prob = rank[np.asarray(c.prob, dtype=np.int64)] if len(c.prob) else np.zeros(0, np.int64)
        idx = np.asarray(c.idx, dtype=np.int64)
        order = np.lexsort((idx, prob))
        self.pids = pids
        self.prob, self.idx = prob[order], idx[order]
        self.verdict = np.asarray(c.verdict, dtype=np.int64)[order] if len(c.verdict) else np.zeros(0, np.int64)
        self.tok = np.asarray(c.tok, dtype=float)[order]
        self.chars = np.asarray(c.chars, dtype=np.int64)[order]
        self.key = np.asarray(c.key, dtype=np.int64)[order]
        self.hash = np.asarray(c.hash, dtype=np.int64)[order]
        self.length_finish = np.frombuffer(bytes(c.flags), dtype=np.uint8)[order].astype(bool)
        self.verdict_names, self.key_values, self.hash_values = c.verdicts, c.keys, c.hashes
        inverse = np.empty_like(order)
        inverse[order] = np.arange(order.size)
        self.sparse = {int(inverse[row]): v for row, v in c.sparse.items()}
        self.finish_other = {int(inverse[row]): v for row, v in c.finish.items()}
        correct = c.vcode.get(CORRECT, -2)
        truncated = c.vcode.get(TRUNCATED, -2)
        self.is_scored = self.verdict != _NO
        self.ok = self.verdict == correct
        # report.verdict_group: correct; truncated (by verdict or finish_reason "length"); incorrect
        self.group = np.where(self.ok, 0, np.where((self.verdict == truncated) | self.length_finish, 1, 2))
        self.bounds = np.searchsorted(self.prob, np.arange(len(pids) + 1))

    # --- records, for code that wants dicts -------------------------------------------------------------------
    def _record(self, row: int) -> dict:
        v = int(self.verdict[row])
        k, h, t = int(self.key[row]), int(self.hash[row]), float(self.tok[row])
        r = {"task": self.name, "problem_id": self.pids[int(self.prob[row])], "sample_idx": int(self.idx[row]),
             "verdict": self.verdict_names[v] if v != _NO else None,
             "finish_reason": self.finish_other.get(row, "length" if self.length_finish[row] else "stop"),
             "completion_tokens": None if t != t else (int(t) if t.is_integer() else t),
             "answer_key": self.key_values[k] if k != _NO else None,
             "prompt_hash": self.hash_values[h] if h != _NO else None}
        r.update(self.sparse.get(row, {}))
        return r

    @property
    def records(self) -> "_Records":
        return _Records(self, range(self.idx.size))

    def scored(self, pid: str) -> list[dict]:
        i = self.pids.index(pid) if pid in self.pids else None
        if i is None:
            return []
        return [self._record(row) for row in range(self.bounds[i], self.bounds[i + 1]) if self.is_scored[row]]

    @property
    def by_problem(self) -> dict[str, list[dict]]:
        return {pid: [self._record(row) for row in range(self.bounds[i], self.bounds[i + 1])]
                for i, pid in enumerate(self.pids)}

    # --- compact views --------------------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return int(self.idx.size)

    @property
    def n_scored(self) -> int:
        return int(self.is_scored.sum())

    @property
    def n_unscored(self) -> int:
        return self.n_samples - self.n_scored

    def verdict_counts(self) -> dict[str, int]:
        """Samples per verdict (scored ones)."""
        codes, cnt = np.unique(self.verdict[self.is_scored], return_counts=True)
        return {self.verdict_names[int(c)]: int(n) for c, n in zip(codes, cnt)}

    @property
    def n_length_finish(self) -> int:
        return int(self.length_finish.sum())

    @property
    def has_token_counts(self) -> bool:
        """Some sample carries a token count (imported runs often carry none)."""
        return bool((~np.isnan(self.tok)).any())

    def scored_lengths(self, tokens: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(length, verdict group index into GROUPS, correct) of each scored sample; length in tokens or characters."""
        m = self.is_scored
        lens = self.tok[m] if tokens else self.chars[m].astype(float)
        return lens, self.group[m], self.ok[m]

    def all_scored_have_tokens(self) -> bool:
        return not bool(np.isnan(self.tok[self.is_scored]).any())

    def counts(self) -> dict[str, tuple[int, int]]:
        """problem id -> (scored samples, correct samples); problems without a scored sample are left out."""
        m = len(self.pids)
        n = np.bincount(self.prob[self.is_scored], minlength=m)
        c = np.bincount(self.prob[self.ok], minlength=m)
        return {pid: (int(n[i]), int(c[i])) for i, pid in enumerate(self.pids) if n[i]}

    def per_problem_pass1(self) -> dict[str, float]:
        return {pid: c / n for pid, (n, c) in self.counts().items()}

    @property
    def max_k(self) -> int:
        """Largest k with a defined pass@k: the most samples any problem has (at most the number asked for)."""
        most = max((n for n, _ in self.counts().values()), default=0)
        return min(most, self.requested_n) if self.requested_n else most

    def pass_at_k_curve(self) -> dict[int, metrics.PassAtK]:
        return metrics.pass_at_k_curve(list(self.counts().values()), self.max_k)

    def cons_at_k_curve(self, ks: list[int], draws: int = 16, seed: int = 0) -> dict[int, tuple[float, int]]:
        """Expected majority-vote accuracy with k samples per problem: k -> (value, problems with >= k samples).

        The vote of k samples depends on which k were drawn, so it is averaged over ``draws`` seeded random subsets.
        Each subset keeps sample-index order, so ties break as in the runner's cons@k (earliest sample wins) and at
        k = all samples the value is exactly the runner's."""
        rng = np.random.default_rng(seed)
        sums = {k: 0.0 for k in ks}
        nprob = {k: 0 for k in ks}
        for i in range(len(self.pids)):
            rows = np.arange(self.bounds[i], self.bounds[i + 1])
            rows = rows[self.is_scored[rows]]
            n = rows.size
            if not n:
                continue
            keys, correct = self.key[rows], self.ok[rows]
            usable = [k for k in ks if k <= n]
            if not usable:
                continue
            perms = [rng.permutation(n) for _ in range(draws)]
            for k in usable:
                subsets = [np.arange(n)] if k == n else [np.sort(p[:k]) for p in perms]
                sums[k] += sum(cons_at_k_ids(correct[sub], keys[sub]) for sub in subsets) / len(subsets)
                nprob[k] += 1
        return {k: (sums[k] / nprob[k], nprob[k]) for k in ks if nprob[k]}

    def externals(self) -> list[tuple[bool, dict]]:
        """(our verdict is correct, external grade) for every scored record that carries an external grade."""
        return [(bool(self.ok[row]), extra["external"]) for row, extra in sorted(self.sparse.items())
                if "external" in extra and self.is_scored[row]]


class _Records:
    """A task's light records, made on demand (re-iterable, sized)."""

    def __init__(self, tr: TaskRun, rows: range):
        self.tr, self.rows = tr, rows

    def __iter__(self):
        return (self.tr._record(row) for row in self.rows)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class Run:
    path: Path
    manifest: dict[str, Any]
    results: dict[str, Any] | None
    tasks: dict[str, TaskRun]
    warnings: list[str] = field(default_factory=list)

    @property
    def model(self) -> str:
        return str(self.manifest.get("model") or "unknown")

    @property
    def model_id(self) -> str | None:
        return resolve_model(self.manifest.get("model"), self.manifest.get("model_info"))

    @property
    def model_short(self) -> str:
        m = self.model.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        return m[: -len(".gguf")] if m.endswith(".gguf") else m

    @property
    def label(self) -> str:
        return f"{self.model_short} [{self.path.name}]"


def load_run(path: Path) -> Run:
    path = Path(path)
    store = RunStore(path)
    manifest = store.read_manifest()
    results = None
    warnings: list[str] = []
    if store.results_path.exists():
        try:
            results = json.loads(store.results_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise UserError(f"{store.results_path}: not valid JSON ({e.msg})") from e
    else:
        warnings.append(f"no results.json: the run was never aggregated (run `r1 score {path}`); "
                        f"headline numbers are missing, curves come from the samples")
    columns: dict[str, _Columns] = defaultdict(_Columns)
    for r in store.iter_records():  # streamed: a record lives only until its columns are appended
        columns[r["task"]].add(r)
    mtasks = manifest.get("tasks") or {}
    rtasks = (results or {}).get("tasks") or {}
    tasks: dict[str, TaskRun] = {}
    for name in list(mtasks) + [t for t in columns if t not in mtasks]:
        n = (mtasks.get(name) or {}).get("n")
        tr = TaskRun(name=name, requested_n=int(n) if n else None, results=rtasks.get(name),
                     columns=columns.pop(name, None))
        tasks[name] = tr
        if results is not None and tr.results is None:
            warnings.append(f"{name}: no entry in results.json (run `r1 score {path}`)")
        elif tr.results is not None:
            got = tr.results.get("n_samples")
            have = tr.n_scored
            if got is not None and got != have:
                warnings.append(f"{name}: results.json counts {got} samples but samples.jsonl has {have} scored: "
                                f"results.json is stale (run `r1 score {path}`)")
        if tr.n_unscored:
            warnings.append(f"{name}: {tr.n_unscored} samples have no verdict yet (run `r1 score {path}`)")
    return Run(path=path, manifest=manifest, results=results, tasks=tasks, warnings=warnings)
