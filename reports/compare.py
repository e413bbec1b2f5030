"""`r1 compare A B`: per task, is B's pass@1 different from A's on the problems both runs share?

Problems are the unit: each problem's pass@1 (mean correctness of its samples) is paired across the two runs, and
the delta (B - A) gets a paired bootstrap CI and a paired sign-flip permutation p-value (harness.metrics). When both
runs have a single sample per problem the outcomes are binary pairs and the p-value is the exact McNemar test (the
same test for such data; the bootstrap CI is still shown). With fewer than metrics.MIN_PAIRED_PROBLEMS shared
problems there is no p-value and the verdict says so. ``r1 compare --json`` prints ``CompareResult.to_json()``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import metrics
from harness.config import BOOTSTRAP_SEED, CI_LEVEL

from . import comparability
from .report import DASH, Heading, Para, Table, Warn, pct, render_html, render_markdown
from .runs import Run, load_run

ALPHA = 0.05
PAIRED_RESAMPLES = 10000


@dataclass
class TaskComparison:
    task: str
    n_shared: int
    only_a: int  # problems scored in A only
    only_b: int
    samples_a: str  # samples per shared problem in A ("8", or "4–8" when uneven)
    samples_b: str
    pass1_a: float | None  # on the shared problems
    pass1_b: float | None
    delta: float | None  # B - A
    ci: tuple[float, float] | None
    p_value: float | None
    test: str
    discordant: tuple[int, int] | None = None  # McNemar: (A right / B wrong, A wrong / B right)
    notes: list[str] = field(default_factory=list)
    no_test: str | None = None  # why there is no p-value (too few shared problems)

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA

    @property
    def verdict(self) -> str:
        if self.delta is None:
            return "no shared problems"
        if self.p_value is None:
            return "too few shared problems to test"
        if not self.significant:
            return "no significant difference"
        return "B better" if self.delta > 0 else "A better"


@dataclass
class CompareResult:
    run_a: Run
    run_b: Run
    tasks: list[TaskComparison]
    only_in_a: list[str]  # task names
    only_in_b: list[str]
    settings: list[tuple[str, str, str]]  # (field, A, B) for manifest fields that differ

    HEADERS = ("task", "shared", "pass@1 A", "pass@1 B", "delta (B-A)", f"{int(CI_LEVEL * 100)}% CI", "p", "test",
               "verdict")

    def rows(self) -> list[list[str]]:
        out = []
        for t in self.tasks:
            ci = f"[{_signed(t.ci[0])}, {_signed(t.ci[1])}]" if t.ci else DASH
            test = t.test + (f" ({t.discordant[0]}/{t.discordant[1]} discordant)" if t.discordant else "")
            out.append([t.task, str(t.n_shared), pct(t.pass1_a), pct(t.pass1_b), _signed(t.delta), ci,
                        _p(t.p_value), test, t.verdict + (" *" if t.significant else "")])
        return out

    def notes(self) -> list[str]:
        out = []
        for t in self.tasks:
            if t.only_a or t.only_b:
                out.append(f"{t.task}: {t.only_a} problems only in A and {t.only_b} only in B are left out; deltas "
                           f"are on the {t.n_shared} shared problems")
            if t.samples_a != t.samples_b:
                out.append(f"{t.task}: samples per problem differ (A {t.samples_a}, B {t.samples_b}); pass@1 is "
                           f"comparable, its noise is not")
            if t.no_test:
                out.append(f"{t.task}: {t.no_test}; no p-value")
            out += [f"{t.task}: {n}" for n in t.notes]
        if not self.tasks:
            out.append("no task has scored samples in both runs: nothing to compare")
        if self.only_in_a:
            out.append(f"tasks only in A (not compared): {', '.join(self.only_in_a)}")
        if self.only_in_b:
            out.append(f"tasks only in B (not compared): {', '.join(self.only_in_b)}")
        return out

    def _blocks(self):
        blocks = [Heading(1, "r1 compare"),
                  Para(f"A: {self.run_a.label} — `{self.run_a.path}`"),
                  Para(f"B: {self.run_b.label} — `{self.run_b.path}`")]
        if self.settings:
            blocks.append(Table(["setting", "A", "B"], [list(s) for s in self.settings], set()))
        blocks.append(Table(list(self.HEADERS), self.rows(), {1, 2, 3, 4, 6}))
        blocks.append(Para(f"pass@1 in percent on shared problems; delta in percentage points; * = p < {ALPHA}. "
                           "CI from a paired bootstrap over problems, p from a paired sign-flip permutation test "
                           "(exact up to 16 problems that differ); McNemar (exact) when both runs have one sample per "
                           f"problem; no p-value below {metrics.MIN_PAIRED_PROBLEMS} shared problems."))
        blocks += [Warn(n) for n in self.notes()]
        return blocks

    def to_json(self) -> dict[str, Any]:
        """The machine-readable result (`r1 compare --json`): fractions, not percent; NaN and missing as null."""
        def run(r: Run) -> dict:
            return {"path": str(r.path), "label": r.label, "model": r.model}

        def task(t: TaskComparison) -> dict:
            return {"task": t.task, "n_shared": t.n_shared, "only_a": t.only_a, "only_b": t.only_b,
                    "samples_a": t.samples_a, "samples_b": t.samples_b, "pass@1_a": _num(t.pass1_a),
                    "pass@1_b": _num(t.pass1_b), "delta": _num(t.delta),
                    "ci": [_num(t.ci[0]), _num(t.ci[1])] if t.ci else None, "ci_level": CI_LEVEL,
                    "p_value": _num(t.p_value), "test": t.test if t.p_value is not None else None,
                    "discordant": list(t.discordant) if t.discordant else None, "significant": t.significant,
                    "verdict": t.verdict, "no_test_reason": t.no_test, "notes": t.notes}

        return {"a": run(self.run_a), "b": run(self.run_b), "alpha": ALPHA,
                "settings_differ": [{"field": f, "a": a, "b": b} for f, a, b in self.settings],
                "tasks": [task(t) for t in self.tasks], "only_in_a": self.only_in_a, "only_in_b": self.only_in_b,
                "notes": self.notes()}

    def to_markdown(self) -> str:
        return render_markdown(self._blocks())

    def to_html(self) -> str:
        return render_html(self._blocks(), f"r1 compare: {self.run_a.label} vs {self.run_b.label}")

    def to_text(self) -> str:
        lines = [f"A: {self.run_a.label}  ({self.run_a.path})", f"B: {self.run_b.label}  ({self.run_b.path})"]
        for name, a, b in self.settings:
            lines.append(f"  differs: {name}: {a} -> {b}")
        rows = [list(self.HEADERS)] + self.rows()
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.HEADERS))]
        right = {1, 2, 3, 4, 6}
        lines.append("")
        for j, r in enumerate(rows):
            lines.append("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
                                   enumerate(zip(r, widths))).rstrip())
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines.append("")
        lines.append(f"pass@1 in %, delta in points; * = p < {ALPHA} (bootstrap CI and sign-flip permutation p over "
                     f"shared problems; McNemar when both runs have one sample per problem; no p-value below "
                     f"{metrics.MIN_PAIRED_PROBLEMS} shared problems)")
        lines += [f"note: {n}" for n in self.notes()]
        return "\n".join(lines) + "\n"


def _num(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _signed(x: float | None) -> str:
    return DASH if x is None else f"{100 * x:+.1f}"


def _p(p: float | None) -> str:
    if p is None:
        return DASH
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _span(ns: list[int]) -> str:
    if not ns:
        return DASH
    return str(ns[0]) if min(ns) == max(ns) else f"{min(ns)}–{max(ns)}"


def _settings_diff(a: dict, b: dict) -> list[tuple[str, str, str]]:
    out = []
    for key in ("model", "backend", "seed"):
        if a.get(key) != b.get(key):
            out.append((key, str(a.get(key)), str(b.get(key))))
    ta, tb = comparability.think_prefix_text(a), comparability.think_prefix_text(b)
    if ta != tb:  # the decision and its reason (--think-prefix auto), beside generation.think_prefix
        out.append(("think prefix", str(ta), str(tb)))
    ga, gb = a.get("generation") or {}, b.get("generation") or {}
    for key in sorted(set(ga) | set(gb)):
        if ga.get(key) != gb.get(key):
            out.append((f"generation.{key}", str(ga.get(key)), str(gb.get(key))))
    return out


def compare_task(name: str, run_a: Run, run_b: Run) -> TaskComparison:
    ta, tb = run_a.tasks[name], run_b.tasks[name]
    ca, cb = ta.counts(), tb.counts()
    shared = sorted(set(ca) & set(cb))
    notes = []
    if not shared:
        return TaskComparison(name, 0, len(ca), len(cb), DASH, DASH, None, None, None, None, None, DASH)
    a = [ca[p][1] / ca[p][0] for p in shared]
    b = [cb[p][1] / cb[p][0] for p in shared]
    res = metrics.paired_bootstrap(a, b, resamples=PAIRED_RESAMPLES, seed=BOOTSTRAP_SEED, level=CI_LEVEL)
    p_value, test, discordant = res.p_value, res.test or DASH, None
    if all(ca[p][0] == 1 for p in shared) and all(cb[p][0] == 1 for p in shared):
        only_a, only_b, p_mcnemar = metrics.mcnemar([x == 1.0 for x in a], [x == 1.0 for x in b])
        test, discordant = "McNemar exact", (only_a, only_b)
        if p_value is not None:  # too few problems stays too few, whatever the test
            p_value = p_mcnemar
    # Same problem and sample index but another prompt: a template or option change, not only the model.
    differ = total = 0
    for p in shared:
        ha = {r["sample_idx"]: r.get("prompt_hash") for r in ta.scored(p)}
        for r in tb.scored(p):
            h = ha.get(r["sample_idx"])
            if h is not None and r.get("prompt_hash") is not None:
                total += 1
                differ += h != r["prompt_hash"]
    if differ:
        notes.append(f"prompts differ on {differ} of {total} paired samples (same problem and sample index)")
    pub_a, pub_b = (bool(comparability.public_tests_only(t.results)) for t in (ta, tb))
    if pub_a != pub_b:
        notes.append(f"{'A' if pub_a else 'B'} was scored on public/sample tests only, "
                     f"{'B' if pub_a else 'A'} on the hidden tests too: the delta mixes test sets")
    return TaskComparison(
        task=name, n_shared=len(shared), only_a=len(set(ca) - set(cb)), only_b=len(set(cb) - set(ca)),
        samples_a=_span(sorted(ca[p][0] for p in shared)), samples_b=_span(sorted(cb[p][0] for p in shared)),
        pass1_a=sum(a) / len(a), pass1_b=sum(b) / len(b), delta=res.delta, ci=res.ci, p_value=p_value, test=test,
        discordant=discordant, notes=notes, no_test=res.note,
    )


def compare_runs(dir_a: Path, dir_b: Path) -> CompareResult:
    run_a, run_b = load_run(Path(dir_a)), load_run(Path(dir_b))
    names_a = [t for t, tr in run_a.tasks.items() if tr.counts()]
    names_b = [t for t, tr in run_b.tasks.items() if tr.counts()]
    both = [t for t in names_a if t in names_b]
    return CompareResult(
        run_a=run_a, run_b=run_b, tasks=[compare_task(t, run_a, run_b) for t in both],
        only_in_a=[t for t in names_a if t not in names_b], only_in_b=[t for t in names_b if t not in names_a],
        settings=_settings_diff(run_a.manifest, run_b.manifest),
    )
