"""Curation: what turns sampled generations into SFT data, shared by R1's stage 3 (rejection sampling,
``training/pipeline.py``) and distillation (``distill/``). Nothing here imports ``distill``.

1. ``load_records(run_dirs)``: the sample records of harness eval runs (teacher generations, stage-3 samples).
2. Rejection filters: pure functions over those records. Each returns a ``Decision`` per record: keep, or drop with
   a reason. Nothing here re-implements a verifier: correctness is the verdict the shared verifier already wrote
   into the record (``reverify`` re-runs the task's own ``score_many`` when a verifier changed since generation).
   Mixed language is ``harness.verifiers.language`` (the same function as the RL language-consistency reward).
   A recipe names its filters in order; ``run_filters`` applies them as a funnel (a record dropped by one filter is
   not seen by the next) and counts drops per filter. A filter listed under ``report_only`` is evaluated and
   counted but drops nothing. ``assert_enforced`` is the guard run before any SFT: when ``correct`` is enforced,
   every kept record must carry a ``correct`` verdict.
3. ``build_examples``: kept records -> SFT chat examples. The user turn is rebuilt with the task's own
   ``prompt(problem, seed)`` and the source run's generation settings (system prompt, "<think>\\n" prefix), and
   checked against the ``prompt_hash`` stored in the record: the student is trained on exactly the prompt the
   teacher answered, or the build stops. The assistant turn is the completion as generated; ``format: readable``
   rewrites it to the paper's cold-start format ``|special_token|<reasoning_process>|special_token|<summary>``.
   ``write_dataset`` / ``load_dataset``: jsonl + manifest (sources, filter counts, hashes).
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness.config import PAPER_MAX_TOKENS, THINK_PREFIX
from harness.errors import UserError
from harness.models import file_sha256
from harness.runner import configure_task, planned_problems, prompt_hash
from harness.store import RunStore, atomic_write_json, atomic_write_text, now
from harness.task import Problem, get_task, sample_seed
from harness.verifiers.base import CORRECT, THINK_CLOSE, THINK_OPEN, TRUNCATED, split_think


def load_records(run_dirs: list[Path] | list[str]) -> list[dict]:
    """Every sample record of the source runs (verdicts merged), tagged with the run dir it came from."""
    out = []
    for d in run_dirs:
        for r in RunStore(Path(d)).load_records():
            out.append({**r, "_run_dir": str(d)})
    return out


# Tasks whose answers are programs: a code block in their reasoning is expected, not noise.
CODE_TASKS = ("livecodebench", "codeforces", "humaneval")
# The paper names "long paragraphs" as a filter without a threshold; 3,000 characters is our choice (about 750
# tokens without a blank line), above any step of a readable CoT and below the walls of text degenerate samples emit.
DEFAULT_MAX_PARAGRAPH_CHARS = 3000

_FENCE = re.compile(r"^\s*(```|~~~)", re.MULTILINE)
_PARAGRAPH_SPLIT = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Decision:
    keep: bool
    reason: str = ""  # why it was dropped ("" when kept)


KEEP = Decision(True)


def drop(reason: str) -> Decision:
    return Decision(False, reason)


def reasoning_of(rec: dict) -> str:
    """The CoT of a record: the text inside <think>...</think> (everything when there is no think block)."""
    reasoning, final = split_think(rec.get("completion") or "")
    if reasoning is None:
        return final or ""
    return reasoning


# ---------------------------------------------------------------------------------------------- per-record filters
def correct(rec: dict) -> Decision:
    """Keep only samples the shared verifier judged correct (the paper: "only retain the correct ones")."""
    v = rec.get("verdict")
    if v is None:
        return drop("unscored")
    return KEEP if v == CORRECT else drop(f"verdict={v}")


def not_truncated(rec: dict) -> Decision:
    """A sample cut by the token limit, or a <think> never closed, gave no finished answer."""
    if rec.get("finish_reason") == "length":
        return drop("finish_reason=length")
    if rec.get("verdict") == TRUNCATED:
        return drop("verdict=truncated")
    text = rec.get("completion") or ""
    if THINK_OPEN in text and THINK_CLOSE not in text:
        return drop("unclosed <think>")
    return KEEP


def max_tokens(rec: dict, limit: int = PAPER_MAX_TOKENS) -> Decision:
    """Completions longer than the student's training length would be cut mid-thought by the trainer."""
    n = rec.get("completion_tokens")
    if n is None:
        return drop("no token count")
    return KEEP if int(n) <= limit else drop(f"completion_tokens={n}>{limit}")


def long_paragraph(rec: dict, max_chars: int = DEFAULT_MAX_PARAGRAPH_CHARS) -> Decision:
    """The paper drops CoTs with overly long paragraphs (unreadable walls of text)."""
    longest = max((len(p) for p in _PARAGRAPH_SPLIT.split(reasoning_of(rec))), default=0)
    return KEEP if longest <= max_chars else drop(f"paragraph of {longest} chars>{max_chars}")


def code_in_cot(rec: dict, code_tasks: tuple[str, ...] = CODE_TASKS) -> Decision:
    """The paper drops CoTs with code blocks, except where code is the answer."""
    if rec.get("task") in code_tasks:
        return KEEP
    return drop("code block in CoT") if _FENCE.search(reasoning_of(rec)) else KEEP


def mixed_language(rec: dict, target: str = "en", threshold: float | None = None) -> Decision:
    """The paper drops CoTs that mix languages; the measure is the shared one (RL's language-consistency reward),
    on the reasoning part as the paper defines it. ``threshold`` None = the language module's default."""
    is_mixed, default = _language_fn()
    threshold = default if threshold is None else float(threshold)
    if is_mixed(reasoning_of(rec), target, threshold):
        return drop(f"mixed language (target {target}, threshold {threshold})")
    return KEEP


def _language_fn() -> tuple[Callable[[str, str, float], bool], float]:
    try:
        from harness.verifiers.language import DEFAULT_MIXED_THRESHOLD, is_mixed_language
    except ImportError as e:
        raise UserError("filter mixed_language needs harness/verifiers/language.py (is_mixed_language); "
                        "it is not installed in this tree: remove the filter from the recipe or add the module") from e
    return is_mixed_language, DEFAULT_MIXED_THRESHOLD


# ---------------------------------------------------------------------------------------------- set filters
def completion_key(rec: dict) -> str:
    """Duplicate key: same problem, same completion up to whitespace."""
    text = " ".join((rec.get("completion") or "").split())
    return hashlib.sha256(f"{rec.get('task')}\x1f{rec.get('problem_id')}\x1f{text}".encode()).hexdigest()


def duplicates(records: list[dict]) -> list[Decision]:
    """The first of identical completions to one problem is kept; the others add no signal, only weight."""
    first: dict[str, int] = {}
    out = []
    for r in records:
        k = completion_key(r)
        if k in first:
            out.append(drop(f"duplicate of sample {records[first[k]].get('sample_idx')}"))
        else:
            first[k] = len(out)
            out.append(KEEP)
    return out


def decontaminate(records: list[dict], problems: list[str] | tuple[str, ...] = ()) -> list[Decision]:
    """Drop teacher samples on problems the student will be evaluated on ("task/problem_id" keys)."""
    held_out = set(problems)
    return [drop("evaluation problem") if f"{r.get('task')}/{r.get('problem_id')}" in held_out else KEEP
            for r in records]


# ---------------------------------------------------------------------------------------------- the pipeline
# name -> (function, is a set filter)
FILTERS: dict[str, tuple[Callable[..., Any], bool]] = {
    "correct": (correct, False),
    "truncated": (not_truncated, False),
    "max_tokens": (max_tokens, False),
    "long_paragraph": (long_paragraph, False),
    "code_in_cot": (code_in_cot, False),
    "mixed_language": (mixed_language, False),
    "duplicates": (duplicates, True),
    "decontaminate": (decontaminate, True),
}
# The paper's order: cheap structural checks first, correctness, then the readability filters.
DEFAULT_FILTERS = ("truncated", "correct", "max_tokens", "mixed_language", "long_paragraph", "code_in_cot", "duplicates")


@dataclass(frozen=True)
class FilterSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    report_only: bool = False

    def decide(self, records: list[dict]) -> list[Decision]:
        fn, is_set = FILTERS[self.name]
        if self.name == "code_in_cot" and "code_tasks" in self.params:
            params = {**self.params, "code_tasks": tuple(self.params["code_tasks"])}
        else:
            params = self.params
        if is_set:
            return fn(records, **params)
        return [fn(r, **params) for r in records]


def parse_filters(spec: list | None, report_only: list[str] | tuple[str, ...] = ()) -> list[FilterSpec]:
    """Recipe ``filters:`` -> FilterSpecs. Entries are a name or ``{name: {param: value}}``; None = the defaults."""
    out = []
    for item in DEFAULT_FILTERS if spec is None else spec:
        if isinstance(item, str):
            name, params = item, {}
        elif isinstance(item, dict) and len(item) == 1:
            name, params = next(iter(item.items()))
            params = dict(params or {})
        else:
            raise UserError(f"filter entry {item!r}: expected a name or {{name: {{params}}}}")
        if name not in FILTERS:
            raise UserError(f"unknown filter {name!r}; known filters: {', '.join(FILTERS)}")
        out.append(FilterSpec(name, params, name in report_only))
    unknown = set(report_only) - {f.name for f in out}
    if unknown:
        raise UserError(f"report_only names filters not in the list: {', '.join(sorted(unknown))}")
    return out


@dataclass
class FilterResult:
    kept: list[dict]
    dropped: list[tuple[dict, str, str]]  # (record, filter, reason)
    counts: dict[str, int]  # filter -> records it dropped (report-only filters: records it would have dropped)
    report_only: list[str]
    n_input: int

    def report(self) -> dict[str, Any]:
        reasons: dict[str, dict[str, int]] = {}
        for _, f, why in self.dropped:
            short = re.sub(r"\d+", "N", why)  # "completion_tokens=N>N": one bucket per kind of reason
            reasons.setdefault(f, {}).setdefault(short, 0)
            reasons[f][short] += 1
        return {"input": self.n_input, "kept": len(self.kept), "dropped": dict(self.counts),
                "report_only": list(self.report_only), "reasons": reasons}


def run_filters(records: list[dict], specs: list[FilterSpec]) -> FilterResult:
    """Apply the filters in order; each sees only what the previous ones kept."""
    alive = list(records)
    dropped: list[tuple[dict, str, str]] = []
    counts: dict[str, int] = {}
    for spec in specs:
        decisions = spec.decide(alive)
        if len(decisions) != len(alive):
            raise RuntimeError(f"filter {spec.name} returned {len(decisions)} decisions for {len(alive)} records")
        counts[spec.name] = sum(not d.keep for d in decisions)
        if spec.report_only:
            dropped.extend((r, spec.name, "(report only) " + d.reason) for r, d in zip(alive, decisions) if not d.keep)
            continue
        dropped.extend((r, spec.name, d.reason) for r, d in zip(alive, decisions) if not d.keep)
        alive = [r for r, d in zip(alive, decisions) if d.keep]
    return FilterResult(alive, dropped, counts, [s.name for s in specs if s.report_only], len(records))


def assert_enforced(result: "FilterResult", specs: list[FilterSpec]) -> None:
    """The guard before any SFT: nothing the enforced filters reject is in the kept set. With ``correct`` enforced,
    every kept record carries a ``correct`` verdict; with ``truncated`` enforced, none was cut off. Raises
    AssertionError (a bug, not a user error) naming the first offending record."""
    enforced = {s.name for s in specs if not s.report_only}
    for name in ("correct", "truncated"):
        if name not in enforced:
            continue
        fn = FILTERS[name][0]
        for r in result.kept:
            d = fn(r)
            if not d.keep:
                raise AssertionError(f"filter {name} is enforced but kept {r.get('task')}/{r.get('problem_id')}"
                                     f"#{r.get('sample_idx')} ({d.reason})")


def cap_per_problem(records: list[dict], cap: int | None) -> list[dict]:
    """At most ``cap`` records per (task, problem), the first ones in order (None: all)."""
    if not cap:
        return list(records)
    seen: dict[tuple, int] = {}
    out = []
    for r in records:
        k = (r.get("task"), r.get("problem_id"))
        if seen.get(k, 0) < cap:
            out.append(r)
            seen[k] = seen.get(k, 0) + 1
    return out


def reverify(records: list[dict], data_dir: str | None = None) -> list[dict]:
    """Records with verdicts recomputed by each task's own ``score_many`` (after a verifier fix), not in place."""
    from collections import defaultdict

    from harness.runner import score_records
    from harness.task import get_task

    by_task: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        by_task[r["task"]].append(i)
    out = [dict(r) for r in records]
    for name, idxs in by_task.items():
        task = get_task(name)
        pmap = {p.id: p for p in task.problems(data_dir)}
        recs = [out[i] for i in idxs]
        missing = [r["problem_id"] for r in recs if str(r["problem_id"]) not in pmap]
        if missing:
            raise UserError(f"reverify: problems {missing[:5]} are not in task {name}'s data")
        for r, v in zip(recs, score_records(task, pmap, recs)):
            r.update(v.to_dict())
    return out


# ---------------------------------------------------------------------------------------------- SFT dataset
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


__all__ = ["load_records", "Decision", "FILTERS", "DEFAULT_FILTERS", "FilterSpec", "FilterResult", "parse_filters",
           "run_filters", "assert_enforced", "cap_per_problem", "reverify", "build_examples", "write_dataset",
           "load_dataset", "readable", "FORMATS", "PAPER_SPECIAL_TOKEN", "DATASET_FILE", "MANIFEST_FILE"]
