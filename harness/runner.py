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
from .store import KeySet, RunStore, now, package_versions, git_revision, record_key
from .merge import in_shard
from .tally import TaskTally, cons_at_k_ids
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
    # `--think-prefix auto|on|off`; None = take ``gen.think_prefix`` as given (on/off). Resolved against the
    # backend's chat template and harness.models' registry once the backend exists (harness.prompting).
    think_prefix_mode: str | None = None
    judge: Any = None  # harness.judge.JudgeConfig for judge-graded tasks (simpleqa, frames)
    paper_stage: str | None = None  # manifest "paper_stage": zero|dev1|dev2|dev3|r1 (reports' per-stage view)
    shard: tuple[int, int] | None = None  # (I, N): only the sample keys of shard I of N (harness.merge)


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
    limit = tmanifest.get("limit")
    if limit and "limit_selection" not in (tmanifest.get("data") or {}) and "limit_selection" in task.describe():
        # a run made before this task's --limit was stratified covered the first `limit` rows: rescore those
        return task.problems(data_dir)[:limit]
    return task.problems(data_dir, limit)


# ---------------------------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------------------------
def score_records(task: Task, problems: dict[str, Problem], records: list[dict]) -> list[Verdict]:
    items = []
    for r in records:
        items.append(ScoreItem(problems[str(r["problem_id"])], r.get("completion") or "", r.get("finish_reason") or "stop",
                               r.get("prompt_meta") or {}, key=record_key(r)))
    try:
        verdicts = task.score_many(items)
    except UserError:  # the user's to fix (e.g. no judge for a judge-graded task), not a task bug
        raise
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
class PlannedRecords:
    """The records of planned problems, re-iterable: a task's ``extra_results`` walks them after the tally did, so a
    streamed run is read from disk again instead of being held in memory."""

    def __init__(self, records, planned: set[str]):
        self.records, self.planned = records, planned

    def __iter__(self):
        return (r for r in self.records if str(r["problem_id"]) in self.planned)


def aggregate_task(task: Task, problems: list[Problem], records, n_requested: int,
                   tally: TaskTally | None = None, extras: dict | None = None) -> dict[str, Any]:
    """results.json's entry for a task. ``records``: a list, or any re-iterable (e.g. a file streamed twice): one pass
    counts per-problem outcomes into compact arrays (skipped when the caller already filled ``tally``), metrics are
    computed from those. ``extras``: the task's ``extra_results`` when the caller computed them while streaming."""
    if tally is None:
        tally = TaskTally(problems)
        for r in records:
            tally.add(r)

    counts, per_problem, cons_hits = [], {}, {}
    cons_k = task.cons_k if task.cons_k else (n_requested if n_requested > 1 else None)
    cons_k = min(cons_k, n_requested) if cons_k else None
    missing = [p.id for i, p in enumerate(problems) if not tally.n_of(i)]
    incomplete = [p.id for i, p in enumerate(problems) if 0 < tally.n_of(i) < n_requested]
    for i, p in enumerate(problems):
        n = tally.n_of(i)
        if not n:
            continue
        ok, keys = tally.outcomes(i)
        c = int(ok.sum())
        counts.append((n, c))
        per_problem[p.id] = c / n
        if cons_k and n >= cons_k:
            cons_hits[p.id] = cons_at_k_ids(ok, keys, cons_k)

    values = list(per_problem.values())
    verdicts = {s: 0 for s in STATUSES}
    for v, cnt in tally.verdicts.items():
        v = v if v in verdicts else "unscored"
        verdicts[v] = verdicts.get(v, 0) + cnt
    n_samples = tally.n_samples
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
        "mean_completion_tokens": tally.mean_tokens(),
    }
    pass_k, excluded = {}, {}
    for k, pk in metrics.pass_at_k_curve(counts, n_requested).items():
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
    res.update(task.extra_results(problems, PlannedRecords(records, set(tally.pos))) if extras is None else extras)
    res.update(_prompt_health(tally, n_samples))
    return res


# ---------------------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------------------
def _prompt_health(tally: TaskTally, n_samples: int) -> dict[str, Any]:
    """Signs that the prompt protocol did not suit the model: samples that stopped on their own with their
    ``<think>`` never closed (a plain chat model given the think prefix), and samples whose budget the context
    cut below --max-tokens (``max_tokens_granted`` on the record). Counted per record by the tally."""
    unclosed, capped = tally.unclosed_think_stop, tally.context_capped
    return {"unclosed_think_stop_rate": unclosed / n_samples if n_samples else None,
            "context_capped_samples": capped}


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
        **({"paper_stage": spec.paper_stage} if spec.paper_stage else {}),
        **({"shard": {"index": spec.shard[0], "count": spec.shard[1]}} if spec.shard else {}),
        **({"judge": spec.judge.describe()} if spec.judge is not None else {}),
    }


def _plan(spec: EvalSpec) -> tuple[list[Task], dict[str, int], dict[str, list[Problem]]]:
    """The tasks (configured), samples per problem and the problems of a run: shared by eval and --dry-run."""
    tasks = [get_task(n) for n in spec.tasks]
    for t in tasks:
        configure_task(t, spec.task_options)
    ns = {t.name: spec.n if spec.n is not None else t.default_k for t in tasks}
    if any(v < 1 for v in ns.values()):
        raise UserError("-n must be >= 1")
    return tasks, ns, {t.name: t.problems(spec.data_dir, spec.limit) for t in tasks}


def evaluate(spec: EvalSpec) -> dict:
    # Load data before starting a backend: a missing file should fail in a second, not after a model load.
    tasks, ns, problems = _plan(spec)
    from . import judge as judging

    judging.preflight(tasks, spec.judge)  # a judge-graded task without a (reachable) judge fails now
    store = RunStore(spec.out)
    judging.attach(tasks, spec.out, spec.judge)
    backend = make_backend(spec.backend, spec.model, **spec.backend_options)
    try:
        decision = resolve_think_prefix(spec, backend, store)
        spec.gen = spec.gen.with_(think_prefix=decision.enabled)
        new_manifest = build_manifest(spec, tasks, ns, backend.describe())
        new_manifest["think_prefix"] = decision.to_dict()
        manifest = store.open_for_run(new_manifest, overwrite=spec.overwrite)
        if manifest.get("think_prefix") != new_manifest["think_prefix"]:  # a resumed run: this invocation's say
            manifest["think_prefix"] = new_manifest["think_prefix"]
            store.write_manifest(manifest)
        for f in ("paper_stage", "judge"):  # likewise: a resumed run takes this invocation's tag and judge
            if f in new_manifest and manifest.get(f) != new_manifest[f]:
                manifest[f] = new_manifest[f]
                store.write_manifest(manifest)
        try:
            _generate(spec, store, backend, tasks, problems, ns)
        finally:  # also when the server gave up: what it took to get this far belongs to the run's record
            record_backend_stats(store, manifest, backend)
    finally:
        backend.close()
        judging.detach(tasks)  # score_run attaches its own; none is left on the registry tasks after a run
    return score_run(spec.out, data_dir=spec.data_dir, rescore=False, manifest=manifest, judge=spec.judge)


def resolve_think_prefix(spec: EvalSpec, backend, store: RunStore | None = None):
    """The think-prefix decision for this run (harness.prompting.decide_think_prefix). Resuming under ``auto``
    keeps what the run started with (an old manifest holds a bool), so an old run dir still resumes."""
    from .prompting import ThinkDecision, decide_think_prefix

    mode = spec.think_prefix_mode if spec.think_prefix_mode is not None else spec.gen.think_prefix
    decision = decide_think_prefix(mode, getattr(backend, "template", None), backend.model_names())
    if decision.mode == "auto" and store is not None and not spec.overwrite and store.manifest_path.exists():
        before = (store.read_manifest().get("generation") or {}).get("think_prefix")
        if isinstance(before, bool) and before != decision.enabled:
            decision = ThinkDecision("auto", before, f"resumed run: kept the think prefix it started with "
                                                     f"({'on' if before else 'off'}); auto alone would say: "
                                                     f"{decision.reason}")
    return decision


def build_requests(spec: EvalSpec, tasks: list[Task], problems, ns, done=frozenset()):
    """(requests, per-key record metadata) for every sample not in ``done``, in task/problem/sample order."""
    prefix = THINK_PREFIX if spec.gen.think_prefix else ""
    requests: list[GenRequest] = []
    meta_by_key: dict[tuple, dict] = {}
    for t in tasks:
        for p in problems[t.name]:
            for i in range(ns[t.name]):
                key = (t.name, p.id, i)
                if key in done or not in_shard(key, spec.shard):
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
    return requests, meta_by_key


def _withheld(req: GenRequest) -> GenRequest:
    """``req`` with its user turns replaced by a placeholder of the same length: for tasks whose authors forbid
    publishing the questions (GPQA), a dry-run still shows the chat template, prefix and sampling around them."""
    from dataclasses import replace

    msgs = [{**m, "content": f"<{m['role']} turn withheld: {len(m['content'])} chars; its authors forbid publishing it>"}
            if m.get("role") == "user" else m for m in req.messages]
    return replace(req, messages=msgs)


def dry_run(spec: EvalSpec, count: int = 3) -> str:
    """`r1 eval --dry-run`: the first ``count`` requests exactly as the model would receive them (chat template,
    think prefix, sampling settings, seed). Generates nothing and writes nothing; the llamacpp / openai backends
    are constructed (no weights load until generation), hf / vllm only render with the model's template."""
    from .prompting import preview, renderer

    tasks, ns, problems = _plan(spec)
    store = RunStore(spec.out)
    done = set() if spec.overwrite else {record_key(r) for r in store.load_samples(repair=False)}
    backend = renderer(spec.backend, spec.model, **spec.backend_options)
    try:
        decision = resolve_think_prefix(spec, backend, store)
        spec.gen = spec.gen.with_(think_prefix=decision.enabled)
        requests, _ = build_requests(spec, tasks, problems, ns, done)
        withhold = {t.name for t in tasks if t.withhold_text}
        requests = [_withheld(r) if r.key[0] in withhold else r for r in requests]
        head = [f"dry run: nothing is generated and nothing is written to {spec.out}",
                f"model: {spec.model} (backend {spec.backend}); run seed {spec.seed}; "
                f"generation: {json.dumps(spec.gen.to_dict())}",
                f"requests: {len(requests)} to generate" + (f" ({len(done)} already in {store.samples_path})"
                                                             if done else "")]
        return "\n".join(head) + "\n" + preview(backend, requests, decision, count)
    finally:
        close = getattr(backend, "close", None)
        if close:
            close()


def record_backend_stats(store: RunStore, manifest: dict, backend) -> None:
    """Add this invocation's server statistics (retries by kind, failovers; openai backend) to the manifest's
    ``backend_stats``, summed over every invocation of the run."""
    stats = getattr(backend, "stats", None)
    new = stats() if callable(stats) else None
    if not new or not new.get("requests"):
        return
    manifest["backend_stats"] = _add_counts(manifest.get("backend_stats") or {}, new)
    store.write_manifest(manifest)


def _add_counts(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict):
            out[k] = _add_counts(out.get(k) or {}, v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = (out.get(k) or 0) + v
        else:
            out[k] = v
    return out


def _generate(spec: EvalSpec, store: RunStore, backend, tasks: list[Task], problems, ns) -> None:
    done = KeySet()  # streamed: resuming a run of a million samples holds a bitmap, not the records
    done_here = 0  # of this shard (all of them when unsharded)
    for r in store.iter_samples(repair=True):
        k = record_key(r)
        done_here += done.add(k) and in_shard(k, spec.shard)
    requests, meta_by_key = build_requests(spec, tasks, problems, ns, done)
    total = sum(len(problems[t.name]) * ns[t.name] for t in tasks)
    if spec.shard:
        total = len(requests) + done_here
    task_map = {t.name: t for t in tasks}
    prob_map = {t.name: {p.id: p for p in problems[t.name]} for t in tasks}

    # Samples generated by an earlier, interrupted invocation whose verdicts never reached scores.jsonl.
    scores = store.load_scores(repair=True)
    scorer = ScoringThread(store, task_map, prob_map)
    scorer.start()
    scorer.submit([r for r in store.iter_samples() if record_key(r) not in scores and r["task"] in task_map
                   and str(r["problem_id"]) in prob_map[r["task"]]])
    if not requests:
        scorer.finish()
        return
    bar = _progress(total, total - len(requests), spec.progress)
    app = store.samples_appender()
    t0, tokens, since_sync, written = time.perf_counter(), 0, 0, 0
    try:
        for req, comp in _saying_what_is_saved(backend.stream(requests), store, lambda: len(done) + written):
            task, pid, idx = req.key
            rec = {"task": task, "problem_id": pid, "sample_idx": idx, **meta_by_key[req.key],
                   "completion": req.assistant_prefix + comp.text, "finish_reason": comp.finish_reason,
                   "prompt_tokens": comp.prompt_tokens, "completion_tokens": comp.completion_tokens,
                   "latency": round(comp.latency, 4)}
            granted = _granted(req, comp)
            if granted is not None:
                rec["max_tokens_granted"] = granted
            app.write([rec])
            written += 1
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


def _granted(req: GenRequest, comp) -> int | None:
    """The generation budget the backend really gave when the context cut it below the request's max_tokens
    (llamacpp / hf / vllm say so in ``extra``; a server's "length" stop short of max_tokens means the same)."""
    g = (comp.extra or {}).get("max_tokens_granted")
    if g is None and comp.finish_reason == "length" and 0 < comp.completion_tokens < req.max_tokens \
            and not (comp.extra or {}).get("completion_tokens_estimated"):
        g = comp.completion_tokens
    return int(g) if g is not None and g < req.max_tokens else None


def _saying_what_is_saved(stream, store: RunStore, saved):
    """A backend that gives up (e.g. a server down past its retry budget) ends the run with one line that also
    says what is kept and how to go on."""
    try:
        yield from stream
    except UserError as e:
        raise UserError(f"{e} | {saved()} sample(s) are saved in {store.samples_path}; re-run the same command to "
                        f"resume") from e


def _progress(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="sample", dynamic_ncols=True, desc="r1 eval")


SCORE_BATCH = 4096  # records scored per score_many call while a run is folded: bounds memory, keeps the pool busy


class _Feed:
    """Runs ``fn(records)`` in a thread on records handed over in batches while a run is folded, so a task's
    ``extra_results`` makes its first pass without the file being read again. ``records`` is re-iterable: a later
    pass waits for the end of the fold (the feed drained), then reads the new samples.jsonl (``again``)."""

    _END = object()

    def __init__(self, fn, again):
        self.q: queue.Queue = queue.Queue(maxsize=16)
        self.value: Any = None
        self.error: BaseException | None = None
        self.again = again
        self._gen = self._records()
        self._fed = False
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True, name="r1-extras")
        self.thread.start()

    def _records(self):
        while True:
            batch = self.q.get()
            if batch is self._END:
                return
            yield from batch

    def __iter__(self):
        if not self._fed:
            self._fed = True
            return self._gen
        for _ in self._gen:  # the END sentinel comes after samples.jsonl was replaced: the file is complete
            pass
        return iter(self.again)

    def _run(self, fn) -> None:
        try:
            self.value = fn(self)
        except BaseException as e:  # noqa: BLE001 - surfaced by result()
            self.error = e
        for _ in self._gen:  # drain, so the producer never blocks on a consumer that stopped early
            pass

    def put(self, batch: list[dict]) -> None:
        self.q.put(batch)

    def result(self) -> dict:
        self.q.put(self._END)
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.value


class _TaskRecordsOnDisk:
    """One task's records in a run's samples.jsonl, re-read from disk at each iteration."""

    def __init__(self, store: RunStore, task: str):
        self.store, self.task = store, task

    def __iter__(self):
        return (r for r in self.store.iter_samples() if r["task"] == self.task)


def score_run(out: Path, data_dir: str | None = None, rescore: bool = True, manifest: dict | None = None,
              judge=None, rejudge: bool = False) -> dict:
    """Score the run dir's samples (all of them when ``rescore``, else only unscored ones) and write results.json.

    Streams: records are read in key order, scored in batches, tallied into compact per-problem arrays and written
    to a new samples.jsonl that replaces the old one atomically; memory does not grow with the number of samples."""
    store = RunStore(Path(out))
    manifest = manifest or store.read_manifest()
    data_dir = data_dir or manifest.get("data_dir")
    ctx: dict[str, tuple[Task, list[Problem], dict[str, Problem], TaskTally]] = {}
    feeds: dict[str, _Feed] = {}
    for name, tman in manifest.get("tasks", {}).items():
        task = get_task(name)
        configure_task(task, tman.get("options") or {})
        tman = {**tman, "source": manifest.get("source")}
        problems = planned_problems(task, tman, store, data_dir)
        ctx[name] = (task, problems, {p.id: p for p in problems}, TaskTally(problems))
        if type(task).extra_results is not Task.extra_results:
            feeds[name] = _Feed(lambda recs, task=task, problems=problems: task.extra_results(problems, recs),
                                PlannedRecords(_TaskRecordsOnDisk(store, name), {p.id for p in problems}))
    from . import judge as judging

    # judge-graded tasks: stored judgments are reused; only missing ones (or all, with rejudge) go to the judge
    if judging.attach([c[0] for c in ctx.values()], store.root, judge, manifest, rejudge) and judge is not None:
        if manifest.get("judge") != judge.describe():
            manifest["judge"] = judge.describe()
            store.write_manifest(manifest)

    def scored_batch(name: str, batch: list[dict]) -> list[dict]:
        c = ctx.get(name)
        if c is None:  # records of tasks no longer in the manifest: kept as they are, never dropped
            return batch
        task, _, pmap, tally = c
        planned = [r for r in batch if str(r["problem_id"]) in pmap]  # others are kept as they are, unscored
        todo = planned if rescore else [r for r in planned if not r.get("verdict")]
        for r, v in zip(todo, score_records(task, pmap, todo) if todo else []):
            r.update(v.to_dict())
        for r in planned:
            tally.add(r)
        if name in feeds and planned:
            feeds[name].put(planned)
        return batch

    def folded():
        batch: list[dict] = []
        for r in store.sorted_records():
            if batch and (r["task"] != batch[0]["task"] or len(batch) >= SCORE_BATCH):
                yield from scored_batch(batch[0]["task"], batch)
                batch = []
            batch.append(r)
        if batch:
            yield from scored_batch(batch[0]["task"], batch)

    store.replace_samples(folded())
    results: dict[str, Any] = {}
    for name, (task, problems, _, tally) in ctx.items():
        results[name] = aggregate_task(task, problems, _TaskRecordsOnDisk(store, name),
                                       int(manifest["tasks"][name].get("n", 1)), tally=tally,
                                       extras=feeds[name].result() if name in feeds else {})
    out_obj = {"tasks": results, "manifest": manifest, "scored": now()}
    store.write_results(out_obj)
    judging.detach([c[0] for c in ctx.values()])  # the registry tasks keep no judge of this run (library callers)
    return out_obj
