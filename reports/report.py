"""`r1 report DIR... --out R`: measured vs paper, as R/report.md, a self-contained R/report.html and R/*.png.

The report is first built as a list of blocks (headings, paragraphs, warnings, tables, images); the Markdown and the
HTML are two renderings of the same blocks, so they can never disagree. Scores are printed in percent with one
decimal, like the paper's tables.
"""
from __future__ import annotations

import base64
import html
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.config import CI_LEVEL

from . import comparability, paper_tables, plots
from .runs import CORRECT, GROUPS, TRUNCATED, Run, TaskRun, load_run

STANDARD_KEYS = {"pass@1", "pass@1_ci", "ci_level", "n_problems", "n_planned_problems", "samples_per_problem",
                 "n_samples", "missing_problems", "incomplete_problems", "verdicts", "truncation_rate",
                 "no_answer_rate", "mean_completion_tokens", "pass@k", "pass@k_excluded_problems", "cons_k",
                 "cons_n_problems", "breakdowns"}
VERDICT_ORDER = ("correct", "incorrect", "no_answer", "truncated", "timeout", "error")
LENGTH_BUCKETS = 6
DASH = "—"


# --- blocks -------------------------------------------------------------------------------------------------------
@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str


@dataclass
class Warn:
    text: str


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    numeric: set[int]  # column indexes to right-align


@dataclass
class Image:
    path: Path
    alt: str


Block = Heading | Para | Warn | Table | Image


def _md_cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Para):
            out.append(b.text)
        elif isinstance(b, Warn):
            out.append("> ⚠ " + b.text)
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(_md_cell(h) for h in b.headers) + " |",
                     "|" + "|".join("---:" if i in b.numeric else "---" for i in range(len(b.headers))) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("\n".join(lines))
        elif isinstance(b, Image):
            out.append(f"![{b.alt}]({b.path.name})")
        out.append("")
    return "\n".join(out)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;
color:#222;line-height:1.4}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;vertical-align:top}
th{background:#f0f2f5;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fafafa}
.warn{background:#fff4d6;border-left:4px solid #e0a800;padding:.4em .8em;margin:.4em 0}
img{max-width:100%;border:1px solid #ddd;margin:.4em 0 1em;display:block}
h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
code{background:#f3f3f3;padding:0 3px}
"""


def _inline_html(text: str) -> str:
    """Escape, then render the two Markdown inline forms the report uses: `code` and **bold**."""
    s = html.escape(text)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", s)


def render_html(blocks: Sequence[Block], title: str) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{_inline_html(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f"<p>{_inline_html(b.text)}</p>")
        elif isinstance(b, Warn):
            out.append(f'<div class="warn">⚠ {_inline_html(b.text)}</div>')
        elif isinstance(b, Table):
            head = "".join(f"<th>{_inline_html(h)}</th>" for h in b.headers)
            rows = "".join(
                "<tr>" + "".join(f'<td class="n">{_inline_html(c)}</td>' if i in b.numeric else f"<td>{_inline_html(c)}</td>"
                                 for i, c in enumerate(row)) + "</tr>" for row in b.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(b, Image):
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            out.append(f'<img alt="{html.escape(b.alt)}" src="data:image/png;base64,{data}">')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --- formatting ---------------------------------------------------------------------------------------------------
def pct(x: float | None) -> str:
    return DASH if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.1f}"


def num(x: Any) -> str:
    if x is None:
        return DASH
    if isinstance(x, float):
        return f"{x:.1f}" if abs(x) >= 10 or x == int(x) else f"{x:.3g}"
    return str(x)


def k_grid(kmax: int) -> list[int]:
    ks = [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024) if k <= kmax]
    return ks + ([kmax] if kmax and kmax not in ks else [])


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_") or "x"


def _short_list(ids: Sequence[str], n: int = 8) -> str:
    ids = list(ids)
    return ", ".join(ids[:n]) + (f", … (+{len(ids) - n})" if len(ids) > n else "")


# --- per run/task facts -------------------------------------------------------------------------------------------
def verdict_group(r: dict) -> str:
    """The three groups of the length plots: correct, truncated (ran out of tokens, or judged so), incorrect (rest)."""
    if r.get("verdict") == CORRECT:
        return "correct"
    if r.get("verdict") == TRUNCATED or r.get("finish_reason") == "length":
        return "truncated"
    return "incorrect"


def sample_flags(run: Run, tr: TaskRun) -> list[str]:
    """Why a task's numbers rest on fewer samples than asked: never hidden, always spelled out."""
    flags = []
    res = tr.results or {}
    asked = tr.requested_n
    counts = tr.counts()
    short = sorted(pid for pid, (n, _) in counts.items() if asked and n < asked)
    missing = list(res.get("missing_problems") or [])
    if short:
        flags.append(f"{len(short)} of {len(counts)} problems have fewer than the {asked} samples asked for "
                     f"(min {min(counts[p][0] for p in short)}): {_short_list(short)}")
    if missing:
        flags.append(f"{len(missing)} planned problems have no sample at all: {_short_list(missing)}")
    excluded = res.get("pass@k_excluded_problems") or {}
    if excluded and short:
        worst = max(excluded.items(), key=lambda kv: int(kv[0]))
        flags.append(f"pass@k for k > {min(counts[p][0] for p in short)} leaves out the short problems "
                     f"(at k={worst[0]}: {worst[1]} left out)")
    if tr.n_unscored:
        flags.append(f"{tr.n_unscored} samples not scored yet")
    return flags


def sample_span(tr: TaskRun) -> str:
    ns = [n for n, _ in tr.counts().values()]
    if not ns:
        return f"0 / {tr.requested_n or '?'}"
    got = f"{min(ns)}" if min(ns) == max(ns) else f"{min(ns)}–{max(ns)}"
    return f"{got} / {tr.requested_n or '?'}"


def inside_ci(paper: float | None, ci: Sequence[float] | None) -> str:
    if paper is None or not ci or ci[0] is None:
        return DASH
    lo, hi = ci
    if lo - 1e-12 <= paper <= hi + 1e-12:
        return "yes"
    return "no (paper above)" if paper > hi else "no (paper below)"


def protocol_diffs(manifest: dict) -> list[str]:
    """Run-wide departures from the paper's protocol (reports/comparability.py; per task, k is added there)."""
    return comparability.protocol_diffs(manifest)


# --- the report ---------------------------------------------------------------------------------------------------
class ReportBuilder:
    def __init__(self, runs: list[Run], out: Path):
        self.runs, self.out = runs, out
        self.blocks: list[Block] = []
        self.plots: dict[str, Path] = {}
        self.tasks: list[str] = []
        for r in runs:
            for t in r.tasks:
                if t not in self.tasks:
                    self.tasks.append(t)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)

    def image(self, name: str, path: Path, alt: str) -> None:
        self.plots[name] = path
        self.add(Image(path, alt))

    def runs_with(self, task: str) -> list[tuple[int, Run, TaskRun]]:
        return [(i, r, r.tasks[task]) for i, r in enumerate(self.runs) if task in r.tasks]

    # --- sections --------------------------------------------------------------------------------------------
    def build(self, generated: str) -> None:
        self.add(Heading(1, "r1-harness report: measured vs DeepSeek-R1 paper"),
                 Para(f"Generated {generated}. Paper numbers: DeepSeek-R1 (arXiv:2501.12948v1), Tables 2, 4, 5, 6. "
                      f"Scores in percent; CIs are {int(CI_LEVEL * 100)}% percentile bootstrap intervals over "
                      f"problems. pass@1 is the mean correctness over each problem's samples."))
        self.section_not_comparable()
        self.section_runs()
        self.section_summary()
        from .table4 import stage_blocks, table4_blocks  # Table 4 and per-stage views (reports/table4.py)

        self.add(*table4_blocks(self.runs), *stage_blocks(self.runs))
        self.section_extras()
        for task in self.tasks:
            self.section_task(task)

    def section_not_comparable(self) -> None:
        """At the top: numbers that must not be read beside the paper's, and why."""
        for task in self.tasks:
            for i, run, tr in self.runs_with(task):
                why = comparability.public_tests_only(tr.results)
                if why:
                    self.add(Warn(f"**Not comparable to the paper: {task}, run {i + 1} ({run.path.name})** is "
                                  f"{why}. Passing the sample tests does not mean passing the hidden ones, so its "
                                  f"{'pass@1 and rating overstate' if task == 'codeforces' else 'pass@1 overstates'} "
                                  f"the paper's metric; the `paper in CI` column reads "
                                  f"\"{comparability.NOT_COMPARABLE}\"."))

    def section_runs(self) -> None:
        self.add(Heading(2, "Runs"))
        rows = []
        for i, r in enumerate(self.runs, 1):
            gen = r.manifest.get("generation") if isinstance(r.manifest.get("generation"), dict) else {}
            mid = r.model_id
            info = r.manifest.get("model_info") if isinstance(r.manifest.get("model_info"), dict) else {}
            # "embedded" or a local path says little; the backend's own description of the model says what it is.
            described = info.get("name") if isinstance(info.get("name"), str) and info.get("name") != r.model else None
            model = f"{r.model} ({described})" if described else r.model
            rows.append([str(i), r.path.name, model, mid or DASH, str(r.manifest.get("source") or DASH),
                         str(r.manifest.get("backend") or DASH), num(gen.get("temperature")), num(gen.get("top_p")),
                         num(gen.get("max_tokens")), ", ".join(r.tasks), str(r.manifest.get("created") or DASH)])
        self.add(Table(["#", "run dir", "model", "paper row", "source", "backend", "temperature", "top-p",
                        "max tokens", "tasks", "created"], rows, {0, 6, 7, 8}))
        for i, r in enumerate(self.runs, 1):
            if not r.model_id:
                self.add(Para(f"Run {i}: the paper has no row for model `{r.model}`; paper columns stay empty."))
            tp = comparability.think_prefix_text(r.manifest)
            if tp:
                self.add(Para(f"Run {i}: {tp}."))
            diffs = protocol_diffs(r.manifest)
            if diffs:
                self.add(Warn(f"Run {i} ({r.path.name}) differs from the paper's protocol: {'; '.join(diffs)}."))
            for w in r.warnings:
                self.add(Warn(f"Run {i} ({r.path.name}): {w}"))

    def section_summary(self) -> None:
        self.add(Heading(2, "Measured vs paper"))
        headers = ["task", "run", "problems", "samples (got / asked)", "pass@1", f"{int(CI_LEVEL * 100)}% CI",
                   "paper pass@1", "paper in CI", "cons@k", "paper cons", "truncated", "no answer",
                   "mean tokens", "paper source"]
        rows, flags = [], []
        for task in self.tasks:
            for i, run, tr in self.runs_with(task):
                res = tr.results or {}
                task_diffs = comparability.protocol_diffs(run.manifest, task, tr.requested_n)
                pv = paper_tables.lookup(run.model_id, task, "pass@1")
                ci = res.get("pass@1_ci")
                cons_k = res.get("cons_k")
                cons = res.get(f"cons@{cons_k}") if cons_k else None
                paper_cons = self.paper_cons(run, task)
                cons_paper_txt = DASH
                if paper_cons:
                    cons_paper_txt = f"{paper_cons.value:.1f} ({paper_cons.metric})"
                rows.append([
                    task, f"{i + 1}: {run.label}", num(res.get("n_problems", len(tr.counts()))), sample_span(tr),
                    pct(res.get("pass@1")), f"{pct(ci[0])}–{pct(ci[1])}" if ci else DASH,
                    f"{pv.value:.1f}" if pv else DASH,
                    comparability.ci_cell(inside_ci(pv.fraction if pv else None, ci), res, task_diffs),
                    self.cons_cell(res, cons, cons_k), cons_paper_txt,
                    pct(res.get("truncation_rate")), pct(res.get("no_answer_rate")),
                    self.mean_tokens_cell(tr, res), pv.table_title if pv else DASH,
                ])
                flags += [f"{task}, run {i + 1}: {f}" for f in sample_flags(run, tr)]
                flags += [f"{task}, run {i + 1}: {f}" for f in comparability.task_warnings(res)]
                own = [d for d in task_diffs if d not in comparability.protocol_diffs(run.manifest)]
                if own:
                    flags.append(f"{task}, run {i + 1} differs from the paper's protocol for this task: "
                                 f"{'; '.join(own)}")
        self.add(Table(headers, rows, {2, 4, 6, 10, 11, 12}))
        self.add(Para("`truncated` and `no answer` are shares of all samples; `paper in CI` says whether the paper's "
                      "pass@1 lies inside the measured interval, names the protocol fields the run differs in, and "
                      f"reads \"{comparability.NOT_COMPARABLE}\" for scores on public/sample tests only."))
        for f in flags:
            self.add(Warn(f))

    @staticmethod
    def mean_tokens_cell(tr: TaskRun, res: dict) -> str:
        # Imported runs carry no token counts; a mean over missing counts is not a length.
        if not tr.has_token_counts:
            return DASH
        return num(res.get("mean_completion_tokens"))

    @staticmethod
    def cons_cell(res: dict, cons: float | None, cons_k: int | None) -> str:
        if not cons_k:
            return DASH
        n, total = res.get("cons_n_problems"), res.get("n_problems")
        # Problems with fewer than k samples have no cons@k: say on how many problems the vote stands.
        part = f", {n} of {total} problems" if n is not None and total is not None and n < total else ""
        return f"{pct(cons)} (k={cons_k}{part})"

    def paper_cons(self, run: Run, task: str) -> paper_tables.PaperValue | None:
        for (t, metric), v in sorted(paper_tables.values_for(run.model_id).items()):
            if t == task and metric.startswith("cons@"):
                return v
        return None

    def section_extras(self) -> None:
        """Task-specific numbers from results.json (Codeforces rating and percentile, fallback counts, ...)."""
        rows = []
        for task in self.tasks:
            for i, run, tr in self.runs_with(task):
                for key, val in sorted((tr.results or {}).items()):
                    if (key in STANDARD_KEYS or key in comparability.WARNED_KEYS or key.startswith("cons@")
                            or not isinstance(val, (int, float)) or isinstance(val, bool)):
                        continue
                    pv = paper_tables.lookup(run.model_id, task, key)
                    paper = num(pv.value) if pv else DASH
                    if pv and comparability.public_tests_only(tr.results):
                        paper += f" ({comparability.NOT_COMPARABLE}: public tests only)"
                    note = comparability.rating_estimator(tr.results) if key == "rating" else None
                    rows.append([task, f"{i + 1}: {run.label}", key, num(val), paper,
                                 pv.table_title if pv else DASH, note or DASH])
        if rows:
            self.add(Heading(2, "Task-specific results"),
                     Table(["task", "run", "metric", "measured", "paper", "paper source", "how measured"], rows,
                           {3, 4}))

    def section_task(self, task: str) -> None:
        entries = self.runs_with(task)
        self.add(Heading(2, f"Task {task}"))
        for i, run, tr in entries:
            why = comparability.public_tests_only(tr.results)
            if why:
                self.add(Warn(f"Run {i + 1}: {why}. Not comparable to the paper's {task} numbers."))
        self.task_pass_k(task, entries)
        self.task_cons_k(task, entries)
        self.task_verdicts(task, entries)
        self.task_lengths(task, entries)
        self.task_breakdowns(task, entries)
        self.task_external(task, entries)

    def task_pass_k(self, task: str, entries) -> None:
        curves = {i: tr.pass_at_k_curve() for i, _, tr in entries}
        series, paper, intervals = [], [], []
        for i, run, tr in entries:
            ks = [k for k, p in curves[i].items() if p.value is not None]
            series.append((f"{i + 1}: {run.label}", i, ks, [curves[i][k].value for k in ks]))
            ci = (tr.results or {}).get("pass@1_ci")
            if ci and ks:
                intervals.append((i, 1, ci[0], ci[1]))
            pv = paper_tables.lookup(run.model_id, task, "pass@1")
            if pv and pv.fraction is not None and all(p[0] != f"paper: {pv.row_label}" for p in paper):
                paper.append((f"paper: {pv.row_label}", 1, pv.fraction))
        kmax = max((tr.max_k for _, _, tr in entries), default=0)
        self.add(Heading(3, f"{task}: pass@k"))
        if kmax == 0:
            self.add(Para("No scored samples."))
            return
        self.image(f"{task}_pass_at_k", plots.plot_curves(self.out / f"{_slug(task)}_pass_at_k.png",
                                                         f"{task}: pass@k (unbiased estimator; bar: pass@1 CI)",
                                                         "pass@k", series, paper, intervals), f"{task} pass@k")
        ks = k_grid(kmax)
        rows = []
        for i, run, tr in entries:
            cells = []
            for k in ks:
                p = curves[i].get(k)
                cells.append(DASH if p is None or p.value is None else
                             pct(p.value) + (f" ({p.n_excluded} left out)" if p.n_excluded else ""))
            rows.append([f"{i + 1}: {run.label}"] + cells)
        self.add(Table(["run"] + [f"pass@{k}" for k in ks], rows, set(range(1, len(ks) + 1))))

    def task_cons_k(self, task: str, entries) -> None:
        kmax = max((tr.max_k for _, _, tr in entries), default=0)
        if kmax < 2:
            return
        ks = k_grid(kmax)
        series, rows, paper = [], [], []
        for i, run, tr in entries:
            curve = tr.cons_at_k_curve([k for k in ks if k <= tr.max_k])
            series.append((f"{i + 1}: {run.label}", i, list(curve), [v for v, _ in curve.values()]))
            rows.append([f"{i + 1}: {run.label}"] + [pct(curve[k][0]) if k in curve else DASH for k in ks])
            pc = self.paper_cons(run, task)
            if pc and pc.fraction is not None:
                lab = f"paper {pc.metric}: {pc.row_label}"
                if all(p[0] != lab for p in paper):
                    paper.append((lab, int(pc.metric.split("@")[1]), pc.fraction))
        self.add(Heading(3, f"{task}: cons@k (majority vote) vs k"))
        self.image(f"{task}_cons_at_k", plots.plot_curves(self.out / f"{_slug(task)}_cons_at_k.png",
                                                         f"{task}: cons@k vs k", "cons@k", series, paper),
                   f"{task} cons@k vs k")
        self.add(Table(["run"] + [f"cons@{k}" for k in ks], rows, set(range(1, len(ks) + 1))),
                 Para("cons@k below the full k averages the vote over 16 seeded random subsets of each problem's "
                      "samples; only problems with at least k samples count."))

    def task_verdicts(self, task: str, entries) -> None:
        rows = []
        for i, run, tr in entries:
            got = tr.verdict_counts()
            counts = {v: got.get(v, 0) for v in VERDICT_ORDER}
            unscored = tr.n_samples - sum(counts.values())
            n = tr.n_samples or 1
            length = tr.n_length_finish
            rows.append([f"{i + 1}: {run.label}", str(tr.n_samples)] +
                        [f"{counts[v]} ({100 * counts[v] / n:.1f}%)" for v in VERDICT_ORDER] +
                        [str(unscored), f"{length} ({100 * length / n:.1f}%)"])
        self.add(Heading(3, f"{task}: verdicts"),
                 Table(["run", "samples"] + list(VERDICT_ORDER) + ["unscored", "finish_reason=length"], rows,
                       set(range(1, 10))))

    def task_lengths(self, task: str, entries) -> None:
        if not any(tr.n_scored for _, _, tr in entries):
            return
        # Imported runs often carry no token counts; then every run of the task is measured in characters, so the
        # plots never mix units.
        tokens = all(tr.all_scored_have_tokens() for _, _, tr in entries)
        unit = "tokens" if tokens else "characters"

        per_run, measured = [], []
        for i, run, tr in entries:
            lens, group, ok = tr.scored_lengths(tokens)
            measured.append((lens, ok))
            groups: dict[str, list[float]] = {g: (lens[group == GROUPS.index(g)] if g in GROUPS else lens[:0]).tolist()
                                              for g in plots.VERDICT_COLORS}
            per_run.append((i, run, tr, groups))
        self.add(Heading(3, f"{task}: response length by verdict"))
        if not tokens:
            self.add(Para("Some samples carry no token count (imported run): lengths are in characters."))
        self.image(f"{task}_lengths", plots.plot_lengths(self.out / f"{_slug(task)}_lengths.png",
                                                        f"{task}: response length by verdict", unit,
                                                        [(f"{i + 1}: {run.label}", g) for i, run, _, g in per_run]),
                   f"{task} response length by verdict")
        rows = []
        for i, run, _, groups in per_run:
            for g, vs in groups.items():
                a = np.asarray(vs)
                rows.append([f"{i + 1}: {run.label}", g, str(a.size),
                             num(float(np.median(a))) if a.size else DASH, num(float(a.mean())) if a.size else DASH,
                             num(float(np.quantile(a, 0.9))) if a.size else DASH])
        self.add(Table(["run", "verdict group", "samples", f"median {unit}", f"mean {unit}", f"p90 {unit}"], rows,
                       {2, 3, 4, 5}))

        # Buckets are quantiles of the pooled lengths, shared by all runs so their bars line up.
        pooled = np.concatenate([lens for lens, _ in measured])
        edges = np.unique(np.round(np.quantile(pooled, np.linspace(0, 1, LENGTH_BUCKETS + 1))))
        if edges.size < 2:
            edges = np.asarray([pooled.min(), pooled.min() + 1])
        labels = [f"{int(edges[b])}–{int(edges[b + 1])}" for b in range(edges.size - 1)]
        series, rows = [], []
        for (i, run, tr, _), (lens, ok) in zip(per_run, measured):
            # Right-closed buckets with the first one closed on both sides: every length lands in exactly one.
            idx = np.clip(np.searchsorted(edges, lens, side="left") - 1, 0, edges.size - 2)
            accs, cells = [], []
            for b in range(edges.size - 1):
                m = idx == b
                accs.append(float(ok[m].mean()) if m.any() else None)
                cells.append(f"{pct(accs[-1])} (n={int(m.sum())})" if m.any() else DASH)
            series.append((f"{i + 1}: {run.label}", i, accs))
            rows.append([f"{i + 1}: {run.label}"] + cells)
        self.add(Heading(3, f"{task}: pass@1 by response length"))
        self.image(f"{task}_length_accuracy",
                   plots.plot_length_accuracy(self.out / f"{_slug(task)}_length_accuracy.png",
                                              f"{task}: pass@1 by response length ({unit})", labels, series),
                   f"{task} pass@1 by response length")
        self.add(Table(["run"] + [f"{lab} {unit}" for lab in labels], rows, set(range(1, len(labels) + 1))))

    def task_breakdowns(self, task: str, entries) -> None:
        keys: list[str] = []
        for _, _, tr in entries:
            for k in ((tr.results or {}).get("breakdowns") or {}):
                if k not in keys:
                    keys.append(k)
        for key in keys:
            groups: list[str] = []
            for _, _, tr in entries:
                for g in ((tr.results or {}).get("breakdowns") or {}).get(key, {}):
                    if g not in groups:
                        groups.append(g)
            series, rows = [], []
            for i, run, tr in entries:
                bd = ((tr.results or {}).get("breakdowns") or {}).get(key, {})
                series.append((f"{i + 1}: {run.label}", i, [bd[g]["pass@1"] if g in bd else None for g in groups]))
            for g in groups:
                row = [g]
                for i, run, tr in entries:
                    cell = ((tr.results or {}).get("breakdowns") or {}).get(key, {}).get(g)
                    row.append(f"{pct(cell['pass@1'])} (n={cell['n_problems']})" if cell else DASH)
                rows.append(row)
            self.add(Heading(3, f"{task}: pass@1 by {key}"))
            self.image(f"{task}_by_{key}", plots.plot_breakdown(self.out / f"{_slug(task)}_by_{_slug(key)}.png",
                                                               f"{task}: pass@1 by {key}", groups, series),
                       f"{task} pass@1 by {key}")
            self.add(Table([key] + [f"{i + 1}: {run.label}" for i, run, _ in entries], rows,
                           set(range(1, len(entries) + 1))))

    def task_external(self, task: str, entries) -> None:
        rows = []
        for i, run, tr in entries:
            pairs = [(ours, ext) for ours, ext in tr.externals() if isinstance(ext.get("passed"), bool)]
            if not pairs:
                continue
            tools = sorted({str(ext.get("tool") or "external") for _, ext in pairs})
            ours = np.asarray([o for o, _ in pairs])
            theirs = np.asarray([e["passed"] for _, e in pairs])
            rows.append([f"{i + 1}: {run.label}", ", ".join(tools), str(len(pairs)), pct(float(theirs.mean())),
                         pct(float(ours.mean())), pct(float((ours == theirs).mean())),
                         str(int((theirs & ~ours).sum())), str(int((ours & ~theirs).sum()))])
        if rows:
            self.add(Heading(3, f"{task}: external grades beside ours"),
                     Table(["run", "grader", "samples", "their pass@1 (per sample)", "our pass@1 (per sample)",
                            "agreement", "they pass, we fail", "we pass, they fail"], rows, {2, 3, 4, 5, 6, 7}))


def write_report(run_dirs: list[Path], out: Path) -> dict[str, Path]:
    """Write out/report.md, out/report.html and out/*.png for the given run dirs; returns the written paths."""
    out = Path(out)
    runs = [load_run(Path(d)) for d in run_dirs]  # a run dir that cannot be read leaves no empty report dir behind
    out.mkdir(parents=True, exist_ok=True)
    builder = ReportBuilder(runs, out)
    builder.build(time.strftime("%Y-%m-%d %H:%M:%S %z"))
    md = out / "report.md"
    md.write_text(render_markdown(builder.blocks), encoding="utf-8")
    page = out / "report.html"
    page.write_text(render_html(builder.blocks, "r1-harness report"), encoding="utf-8")
    return {"markdown": md, "html": page, **{f"plot:{k}": v for k, v in builder.plots.items()}}
