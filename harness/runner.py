"""generate -> persist -> score -> aggregate.

The backend receives every pending request at once and keeps its own workers busy; each completion is appended to
samples.jsonl as it arrives (fsynced every ``batch_size`` completions) and handed to a scoring thread, so scoring
overlaps generation. When generation ends, scoring drains, verdicts are folded into samples.jsonl and results.json
is written.
"""
from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics
from .backends.base import GenRequest, make_backend
from .config import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, CI_LEVEL, DEFAULT_BATCH_SIZE, GenerationConfig, THINK_PREFIX
from .errors import UserError
from .store import RunStore, now, package_versions, git_revision, record_key
from .task import Problem, ScoreItem, Task, get_task, sample_seed
from .verifiers.base import ERROR, NO_ANSWER, STATUSES, TRUNCATED, Verdict

log = logging.getLogger("r1.runner")


@dataclass
class EvalSpec:
    tasks: list[str]
    model: str
    backend: str
    out: Path
    gen: GenerationConfig
    n: int | None = None  # samples per problem; None = each task's default
    limit: int | None = None
    seed: int = 0
    data_dir: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    overwrite: bool = False
    backend_options: dict[str, Any] = field(default_factory=dict)
    task_options: dict[str, Any] = field(default_factory=dict)
    progress: bool = True


def prompt_hash(messages: list[dict], prefix: str) -> str:
    return hashlib.sha256(json.dumps([messages, prefix], sort_keys=True).encode()).hexdigest()[:16]


def configure_task(task: Task, options: dict[str, Any]) -> None:
    if hasattr(task, "configure"):
        task.configure(**{k: v for k, v in options.items() if v is not None})


# ---------------------------------------------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------------------------------------------
def planned_problems(task: Task, tmanifest: dict, store: RunStore, data_dir) -> list[Problem]:
    """The problems a run covers: the dataset's (up to the run's limit), or for an imported run the imported ids,
    where gold given on the import line wins over the dataset's."""
    overrides = [o for o in store.load_problem_overrides() if o.get("task") == task.name]
    if tmanifest.get("source") == "import" or overrides:
        try:
            by_id = {p.id: p for p in task.problems(data_dir)}
        except UserError:
            by_id = {}
        out = []
        for o in overrides:
            base = by_id.get(str(o["problem_id"]))
            if o.get("gold") is not None:
                meta = dict(base.meta) if base else {}
                meta.update(o.get("meta") or {})
                out.append(Problem(id=str(o["problem_id"]), gold=o["gold"], question=base.question if base else "", meta=meta))
            elif base is not None:
                out.append(base)
            else:
                raise UserError(f"{store.problems_path}: problem {o['problem_id']!r} is not in task {task.name}'s data and has no gold")
        return out
    return task.problems(data_dir, tmanifest.get("limit"))


# ---------------------------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------------------------
def score_records(task: Task, problems: dict[str, Problem], records: list[dict]) -> list[Verdict]:
    items = []
    for r in records:
        items.append(ScoreItem(problems[str(r["problem_id"])], r.get("completion") or "", r.get("finish_reason") or "stop",
                               r.get("prompt_meta") or {}))
    try:
        verdicts = task.score_many(items)
    except Exception as e:  # a task bug must not silently become a score of 0: it is an `error` verdict, counted
        log.exception("task %s: scoring failed", task.name)
        return [Verdict(ERROR, detail={"exception": f"{type(e).__name__}: {e}"[:500]}) for _ in items]
    if len(verdicts) != len(items):
        raise RuntimeError(f"task {task.name}: score_many returned {len(verdicts)} verdicts for {len(items)} items")
    return verdicts


def score_fields(r: dict, v: Verdict) -> dict:
    return {"task": r["task"], "problem_id": r["problem_id"], "sample_idx": r["sample_idx"], **v.to_dict()}


class ScoringThread(threading.Thread):
    """Scores records while generation goes on; verdicts are appended to scores.jsonl (fsynced per batch)."""

    def __init__(self, store: RunStore, tasks: dict[str, Task], problems: dict[str, dict[str, Problem]], batch: int = 256):
        super().__init__(daemon=True, name="r1-scorer")
        self.q: queue.Queue = queue.Queue()
        self.store, self.tasks, self.problems, self.batch = store, tasks, problems, batch
        self.scored: dict[tuple, dict] = {}
        self.correct = 0
        self.total = 0
        self.error: BaseException | None = None

    def submit(self, records: list[dict]) -> None:
        for r in records:
            self.q.put(r)

    def finish(self) -> None:
        self.q.put(None)
        self.join()
        if self.error:
            raise self.error

    def run(self) -> None:
        app = self.store.scores_appender()
        try:
            done = False
            while not done:
                items = [self.q.get()]
                while len(items) < self.batch:
                    try:
                        items.append(self.q.get_nowait())
                    except queue.Empty:
                        break
                if items[-1] is None:
                    done = True
                    items.pop()
                by_task: dict[str, list[dict]] = defaultdict(list)
                for r in items:
                    by_task[r["task"]].append(r)
                out = []
                for tname, recs in by_task.items():
                    for r, v in zip(recs, score_records(self.tasks[tname], self.problems[tname], recs)):
                        s = score_fields(r, v)
                        out.append(s)
                        self.scored[record_key(r)] = s
                        self.total += 1
                        self.correct += v.correct
                if out:
                    app.write(out)
                    app.sync()
        except BaseException as e:  # surfaced to the main thread by finish()
            self.error = e
        finally:
            app.close()


# ---------------------------------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------------------------------
def _mean_tokens(records: list[dict]) -> float | None:
    """Imported runs may carry no token counts: then the mean is unknown (None), not 0."""
    toks = [r["completion_tokens"] for r in records if r.get("completion_tokens") is not None]
    return float(np.mean(toks)) if toks else None


def aggregate_task(task: Task, problems: list[Problem], records: list[dict], n_requested: int) -> dict[str, Any]:
    by_pid: dict[str, list[dict]] = defaultdict(list)
    planned = {p.id for p in problems}
    for r in records:
        if str(r["problem_id"]) in planned:
            by_pid[str(r["problem_id"])].append(r)
    for recs in by_pid.values():
        recs.sort(key=lambda r: int(r["sample_idx"]))

    counts, per_problem, cons_hits = [], {}, {}
    cons_k = task.cons_k if task.cons_k else (n_requested if n_requested > 1 else None)
    cons_k = min(cons_k, n_requested) if cons_k else None
    missing = [p.id for p in problems if p.id not in by_pid]
    incomplete = [p.id for p in problems if 0 < len(by_pid.get(p.id, [])) < n_requested]
    for p in problems:
        recs = by_pid.get(p.id)
        if not recs:
            continue
        correct = [r.get("verdict") == "correct" for r in recs]
        counts.append((len(recs), sum(correct)))
        per_problem[p.id] = sum(correct) / len(recs)
        if cons_k and len(recs) >= cons_k:
            cons_hits[p.id] = metrics.cons_at_k([r.get("answer_key") for r in recs], correct, cons_k)

    values = list(per_problem.values())
    all_recs = [r for recs in by_pid.values() for r in recs]
    verdicts = {s: 0 for s in STATUSES}
    for r in all_recs:
        v = r.get("verdict") if r.get("verdict") in verdicts else "unscored"
        verdicts[v] = verdicts.get(v, 0) + 1
    n_samples = len(all_recs)
    res: dict[str, Any] = {
        "pass@1": float(np.mean(values)) if values else None,
        "pass@1_ci": list(metrics.bootstrap_ci(values, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, CI_LEVEL)) if values else None,
        "ci_level": CI_LEVEL,
        "n_problems": len(values),
        "n_planned_problems": len(problems),
        "samples_per_problem": n_requested,
        "n_samples": n_samples,
        "missing_problems": missing,
        "incomplete_problems": incomplete,
        "verdicts": verdicts,
        "truncation_rate": verdicts[TRUNCATED] / n_samples if n_samples else None,
        "no_answer_rate": verdicts[NO_ANSWER] / n_samples if n_samples else None,
        "mean_completion_tokens": _mean_tokens(all_recs),
    }
    pass_k, excluded = {}, {}
    for k in range(1, n_requested + 1):
        pk = metrics.pass_at_k_over(counts, k)
        if pk.value is not None:
            pass_k[str(k)] = pk.value
        if pk.n_excluded:
            excluded[str(k)] = pk.n_excluded
    res["pass@k"] = pass_k
    if excluded:
        res["pass@k_excluded_problems"] = excluded  # problems with fewer than k samples, left out of that k
    if cons_k:
        res[f"cons@{cons_k}"] = float(np.mean(list(cons_hits.values()))) if cons_hits else None
        res["cons_k"] = cons_k
        res["cons_n_problems"] = len(cons_hits)
    if task.breakdowns:
        bd: dict[str, dict] = {}
        meta = {p.id: p.meta for p in problems}
        for key in task.breakdowns:
            groups: dict[str, list[float]] = defaultdict(list)
            for pid, v in per_problem.items():
                groups[str(meta[pid].get(key))].append(v)
            bd[key] = {g: {"pass@1": float(np.mean(vs)), "n_problems": len(vs)} for g, vs in sorted(groups.items())}
        res["breakdowns"] = bd
    res.update(task.extra_results(problems, all_recs))
    return res


# ---------------------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------------------
def build_manifest(spec: EvalSpec, tasks: list[Task], ns: dict[str, int], model_info: dict) -> dict:
    return {
        "model": spec.model,
        "backend": spec.backend,
        "model_info": model_info,
        "generation": spec.gen.to_dict(),
        "seed": spec.seed,
        "tasks": {t.name: {"n": ns[t.name], "limit": spec.limit, "data": t.describe(),
                           "options": {k: v for k, v in spec.task_options.items() if v is not None}} for t in tasks},
        "data_dir": str(Path(spec.data_dir).resolve()) if spec.data_dir else None,
        "versions": package_versions(),
        "git_revision": git_revision(),
        "source": "eval",
    }


def evaluate(spec: EvalSpec) -> dict:
    tasks = [get_task(n) for n in spec.tasks]
    for t in tasks:
        configure_task(t, spec.task_options)
    ns = {t.name: spec.n or t.default_k for t in tasks}
    if any(v < 1 for v in ns.values()):
        raise UserError("-n must be >= 1")
    # Load data before starting a backend: a missing file should fail in a second, not after a model load.
    problems = {t.name: t.problems(spec.data_dir, spec.limit) for t in tasks}
    store = RunStore(spec.out)
    backend = make_backend(spec.backend, spec.model, **spec.backend_options)
    try:
        manifest = store.open_for_run(build_manifest(spec, tasks, ns, backend.describe()), overwrite=spec.overwrite)
        _generate(spec, store, backend, tasks, problems, ns)
    finally:
        backend.close()
    return score_run(spec.out, data_dir=spec.data_dir, rescore=False, manifest=manifest)


def _generate(spec: EvalSpec, store: RunStore, backend, tasks: list[Task], problems, ns) -> None:
    existing = store.load_samples(repair=True)
    done = {record_key(r) for r in existing}
    prefix = THINK_PREFIX if spec.gen.think_prefix else ""
    requests: list[GenRequest] = []
    meta_by_key: dict[tuple, dict] = {}
    for t in tasks:
        for p in problems[t.name]:
            for i in range(ns[t.name]):
                key = (t.name, p.id, i)
                if key in done:
                    continue
                seed = sample_seed(spec.seed, t.name, p.id, i)
                pr = t.prompt(p, seed)
                msgs = list(pr.messages)
                if spec.gen.system_prompt:
                    msgs = [{"role": "system", "content": spec.gen.system_prompt}] + msgs
                requests.append(GenRequest(messages=msgs, max_tokens=spec.gen.max_tokens, temperature=spec.gen.temperature,
                                           top_p=spec.gen.top_p, seed=seed, stop=tuple(t.stop), assistant_prefix=prefix,
                                           key=key))
                meta_by_key[key] = {"seed": seed, "prompt_hash": prompt_hash(msgs, prefix), "prompt_meta": pr.meta}
    total = sum(len(problems[t.name]) * ns[t.name] for t in tasks)
    task_map = {t.name: t for t in tasks}
    prob_map = {t.name: {p.id: p for p in problems[t.name]} for t in tasks}

    # Samples generated by an earlier, interrupted invocation whose verdicts never reached scores.jsonl.
    scores = store.load_scores(repair=True)
    scorer = ScoringThread(store, task_map, prob_map)
    scorer.start()
    scorer.submit([r for r in existing if record_key(r) not in scores and r["task"] in task_map
                   and str(r["problem_id"]) in prob_map[r["task"]]])
    if not requests:
        scorer.finish()
        return
    bar = _progress(total, total - len(requests), spec.progress)
    app = store.samples_appender()
    t0, tokens, since_sync = time.perf_counter(), 0, 0
    try:
        for req, comp in backend.stream(requests):
            task, pid, idx = req.key
            rec = {"task": task, "problem_id": pid, "sample_idx": idx, **meta_by_key[req.key],
                   "completion": req.assistant_prefix + comp.text, "finish_reason": comp.finish_reason,
                   "prompt_tokens": comp.prompt_tokens, "completion_tokens": comp.completion_tokens,
                   "latency": round(comp.latency, 4)}
            app.write([rec])
            since_sync += 1
            if since_sync >= spec.batch_size:
                app.sync()
                since_sync = 0
            scorer.submit([rec])
            tokens += comp.completion_tokens
            if bar is not None:
                el = max(time.perf_counter() - t0, 1e-9)
                acc = scorer.correct / scorer.total if scorer.total else 0.0
                bar.set_postfix_str(f"pass@1={acc:.3f} tok/s={tokens / el:.0f}", refresh=False)
                bar.update(1)
    finally:
        app.close()
        if bar is not None:
            bar.close()
    scorer.finish()


def _progress(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="sample", dynamic_ncols=True, desc="r1 eval")


def score_run(out: Path, data_dir: str | None = None, rescore: bool = True, manifest: dict | None = None) -> dict:
    """Score the run dir's samples (all of them when ``rescore``, else only unscored ones) and write results.json."""
    store = RunStore(Path(out))
    manifest = manifest or store.read_manifest()
    data_dir = data_dir or manifest.get("data_dir")
    records = store.load_records()
    by_task: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_task[r["task"]].append(r)
    results: dict[str, Any] = {}
    final: list[dict] = []
    for name, tman in manifest.get("tasks", {}).items():
        task = get_task(name)
        configure_task(task, tman.get("options") or {})
        tman = {**tman, "source": manifest.get("source")}
        problems = planned_problems(task, tman, store, data_dir)
        pmap = {p.id: p for p in problems}
        all_recs = by_task.pop(name, [])
        final.extend(all_recs)  # records outside the planned problems are kept as they are, never dropped
        recs = [r for r in all_recs if str(r["problem_id"]) in pmap]
        todo = recs if rescore else [r for r in recs if not r.get("verdict")]
        for r, v in zip(todo, score_records(task, pmap, todo) if todo else []):
            r.update(v.to_dict())
        results[name] = aggregate_task(task, problems, recs, int(tman.get("n", 1)))
    for name, recs in by_task.items():  # records of tasks no longer in the manifest: keep, never drop data
        final.extend(recs)
    store.finalize(final)
    out_obj = {"tasks": results, "manifest": manifest, "scored": now()}
    store.write_results(out_obj)
    return out_obj
