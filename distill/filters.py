"""Rejection filters (the paper's stage 3 / distillation data): pure functions over sample records.

Each filter looks at records written by ``harness.runner`` (one JSON line per sample) and returns a ``Decision``
per record: keep, or drop with a reason. Nothing here re-implements a verifier: correctness is the verdict the
shared verifier already wrote into the record (``reverify`` re-runs the task's own ``score_many`` when a verifier
changed since generation). Mixed language is ``harness.verifiers.language`` (the same function as the RL
language-consistency reward).

A recipe names its filters in order; ``run_filters`` applies them as a funnel (a record dropped by one filter is not
seen by the next) and counts drops per filter. A filter listed under ``report_only`` is evaluated and counted but
drops nothing: the CPU demo uses it to show what `correct` would reject on a 135M teacher without training on nothing.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from harness.config import PAPER_MAX_TOKENS
from harness.errors import UserError
from harness.verifiers.base import CORRECT, THINK_CLOSE, THINK_OPEN, TRUNCATED, split_think

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
