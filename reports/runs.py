"""A run dir as the reports see it: manifest, scored sample records grouped per task and problem, results.json.

Headline numbers (pass@1 and its CI, cons@k, rates, breakdowns, task extras) are the runner's, read from
results.json, so a report shows exactly what ``r1 eval`` / ``r1 score`` computed. What results.json does not hold
(curves over k, length distributions) is derived here from the records with the same harness.metrics functions.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import metrics
from harness.errors import UserError
from harness.store import RunStore

from .paper_tables import resolve_model

CORRECT = "correct"
TRUNCATED = "truncated"


@dataclass
class TaskRun:
    name: str
    requested_n: int | None  # samples per problem the manifest asked for
    results: dict[str, Any] | None  # this task's entry in results.json (None: never aggregated)
    by_problem: dict[str, list[dict]]  # problem id -> records sorted by sample_idx (scored and unscored)

    @property
    def records(self) -> list[dict]:
        return [r for recs in self.by_problem.values() for r in recs]

    def scored(self, pid: str) -> list[dict]:
        return [r for r in self.by_problem[pid] if r.get("verdict")]

    @property
    def n_unscored(self) -> int:
        return sum(1 for r in self.records if not r.get("verdict"))

    def counts(self) -> dict[str, tuple[int, int]]:
        """problem id -> (scored samples, correct samples); problems without a scored sample are left out."""
        out = {}
        for pid in self.by_problem:
            recs = self.scored(pid)
            if recs:
                out[pid] = (len(recs), sum(r["verdict"] == CORRECT for r in recs))
        return out

    def per_problem_pass1(self) -> dict[str, float]:
        return {pid: c / n for pid, (n, c) in self.counts().items()}

    @property
    def max_k(self) -> int:
        """Largest k with a defined pass@k: the most samples any problem has (at most the number asked for)."""
        most = max((n for n, _ in self.counts().values()), default=0)
        return min(most, self.requested_n) if self.requested_n else most

    def pass_at_k_curve(self) -> dict[int, metrics.PassAtK]:
        counts = list(self.counts().values())
        return {k: metrics.pass_at_k_over(counts, k) for k in range(1, self.max_k + 1)}

    def cons_at_k_curve(self, ks: list[int], draws: int = 16, seed: int = 0) -> dict[int, tuple[float, int]]:
        """Expected majority-vote accuracy with k samples per problem: k -> (value, problems with >= k samples).

        The vote of k samples depends on which k were drawn, so it is averaged over ``draws`` seeded random subsets.
        Each subset keeps sample-index order, so ties break as in the runner's cons@k (earliest sample wins) and at
        k = all samples the value is exactly the runner's."""
        rng = np.random.default_rng(seed)
        sums = {k: 0.0 for k in ks}
        nprob = {k: 0 for k in ks}
        for pid in sorted(self.by_problem):
            recs = self.scored(pid)
            n = len(recs)
            if not n:
                continue
            keys = [r.get("answer_key") for r in recs]
            correct = [r["verdict"] == CORRECT for r in recs]
            usable = [k for k in ks if k <= n]
            if not usable:
                continue
            perms = [rng.permutation(n) for _ in range(draws)]
            for k in usable:
                subsets = [np.arange(n)] if k == n else [np.sort(p[:k]) for p in perms]
                sums[k] += sum(metrics.cons_at_k([keys[i] for i in sub], [correct[i] for i in sub])
                               for sub in subsets) / len(subsets)
                nprob[k] += 1
        return {k: (sums[k] / nprob[k], nprob[k]) for k in ks if nprob[k]}

    def externals(self) -> list[tuple[bool, dict]]:
        """(our verdict is correct, external grade) for every scored record that carries an external grade."""
        return [(r["verdict"] == CORRECT, r["external"]) for r in self.records
                if r.get("verdict") and isinstance(r.get("external"), dict)]


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
    records = store.load_records()
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
    by_task: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        by_task[r["task"]][str(r["problem_id"])].append(r)
    mtasks = manifest.get("tasks") or {}
    rtasks = (results or {}).get("tasks") or {}
    tasks: dict[str, TaskRun] = {}
    for name in list(mtasks) + [t for t in by_task if t not in mtasks]:
        probs = by_task.get(name, {})
        for recs in probs.values():
            recs.sort(key=lambda r: int(r["sample_idx"]))
        n = (mtasks.get(name) or {}).get("n")
        tr = TaskRun(name=name, requested_n=int(n) if n else None, results=rtasks.get(name),
                     by_problem=dict(sorted(probs.items())))
        tasks[name] = tr
        if results is not None and tr.results is None:
            warnings.append(f"{name}: no entry in results.json (run `r1 score {path}`)")
        elif tr.results is not None:
            got = tr.results.get("n_samples")
            have = sum(1 for r in tr.records if r.get("verdict"))
            if got is not None and got != have:
                warnings.append(f"{name}: results.json counts {got} samples but samples.jsonl has {have} scored: "
                                f"results.json is stale (run `r1 score {path}`)")
        if tr.n_unscored:
            warnings.append(f"{name}: {tr.n_unscored} samples have no verdict yet (run `r1 score {path}`)")
    return Run(path=path, manifest=manifest, results=results, tasks=tasks, warnings=warnings)
