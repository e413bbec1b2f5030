"""The Table 4 view and the per-stage view of a report.

* Table 4: every row of the paper's Table 4 (reports/paper/table4_rows.csv: benchmark, the paper's metric, our task
  and the results.json key that measures it) with one measured column per model of the report's runs beside the
  paper's six model columns; ``—`` where the paper printed no number or nothing was measured. Rows the harness
  cannot run offline carry the reason. Tasks of the runs that are not in Table 4 follow, with no paper number.
* Per stage: runs tagged ``--paper-stage zero|dev1|dev2|dev3|r1`` (manifest ``paper_stage``) beside the Nature
  version's results at each stage of the pipeline (reports/paper/stages.csv).

A measured cell is what the runner wrote to results.json under the row's key; a partial run (``--limit``, fewer
problems than planned) is marked, and the protocol differences the task itself records (DROP 0-shot, FRAMES closed
book, the judge model) are spelled out in the row's notes.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from .comparability import public_tests_only
from .paper_tables import PAPER_DIR
from .runs import Run

DASH = "—"
TABLE4_MODELS = ("Claude-3.5-Sonnet-1022", "GPT-4o-0513", "DeepSeek-V3", "o1-mini", "o1-1217", "DeepSeek-R1")
STAGES = ("zero", "dev1", "dev2", "dev3", "r1")
STAGE_TITLES = {"zero": "R1-Zero", "dev1": "R1 Dev1 (cold start)", "dev2": "R1 Dev2 (reasoning RL)",
                "dev3": "R1 Dev3 (rejection sampling + SFT)", "r1": "R1 (all-scenario RL)"}
SCALES = ("fraction", "percent", "raw")


@dataclass(frozen=True)
class PaperRow:
    category: str
    benchmark: str
    paper_metric: str
    task: str | None  # our task id; None: not runnable offline
    result_key: str | None
    scale: str | None  # fraction (results value in [0, 1]), percent (already in percent), raw (a rating)
    values: dict[str, float | None]  # column (model or stage) -> the paper's number as printed
    offline: str  # why the harness cannot run it here ('' when it can)
    source: str
    note: str

    @property
    def label(self) -> str:
        return f"{self.benchmark} ({self.paper_metric})"


def _load(path: Path, columns: Sequence[str]) -> list[PaperRow]:
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("benchmark", "paper_metric", "task", "result_key", "scale", "source", *columns)
                   if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}")
        for lineno, row in enumerate(reader, 2):
            task = (row.get("task") or "").strip() or None
            scale = (row.get("scale") or "").strip() or None
            if task and (scale not in SCALES or not (row.get("result_key") or "").strip()):
                raise ValueError(f"{path}:{lineno}: a row with a task needs result_key and scale in {SCALES}")
            if not task and not (row.get("offline") or "").strip() and "offline" in (reader.fieldnames or []):
                raise ValueError(f"{path}:{lineno}: a row without a task must say why (offline column)")
            if not (row.get("source") or "").strip():
                raise ValueError(f"{path}:{lineno}: empty source")
            values: dict[str, float | None] = {}
            for c in columns:
                cell = (row.get(c) or "").strip()
                try:
                    values[c] = float(cell) if cell and cell != "-" else None
                except ValueError as e:
                    raise ValueError(f"{path}:{lineno}: column {c}: {cell!r} is not a number") from e
            out.append(PaperRow(category=(row.get("category") or "").strip(), benchmark=row["benchmark"].strip(),
                                paper_metric=row["paper_metric"].strip(), task=task,
                                result_key=(row.get("result_key") or "").strip() or None, scale=scale, values=values,
                                offline=(row.get("offline") or "").strip(), source=row["source"].strip(),
                                note=(row.get("note") or "").strip()))
    return out


@lru_cache(maxsize=None)
def table4_rows() -> tuple[PaperRow, ...]:
    return tuple(_load(PAPER_DIR / "table4_rows.csv", TABLE4_MODELS))


@lru_cache(maxsize=None)
def stage_rows() -> tuple[PaperRow, ...]:
    return tuple(_load(PAPER_DIR / "stages.csv", STAGES))


# --- measured values ------------------------------------------------------------------------------------------------
def paper_cell(v: float | None, scale: str | None) -> str:
    if v is None:
        return DASH
    return f"{v:.0f}" if scale == "raw" else f"{v:.1f}"


def measured(run: Run, row: PaperRow) -> float | None:
    """The row's number from a run's results.json, on the paper's scale (percent, or the raw rating)."""
    tr = run.tasks.get(row.task or "")
    res = (tr.results or {}) if tr else {}
    v = res.get(row.result_key or "")
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return None
    return 100.0 * v if row.scale == "fraction" else float(v)


def partial(run: Run, task: str) -> str | None:
    """Why a run's number covers less than the task's whole set, or None."""
    tr = run.tasks.get(task)
    res = (tr.results or {}) if tr else {}
    limit = ((run.manifest.get("tasks") or {}).get(task) or {}).get("limit")
    if limit:
        return f"--limit {limit}"
    n, planned = res.get("n_problems"), res.get("n_planned_problems")
    imp = run.manifest.get("import")
    if isinstance(imp, dict) and isinstance(imp.get("dataset_problems"), int):
        planned = max(planned if isinstance(planned, int) else 0, imp["dataset_problems"])  # an imported subset
    if isinstance(n, int) and isinstance(planned, int) and n < planned:
        return f"{n} of {planned} problems"
    if run.manifest.get("shard"):
        s = run.manifest["shard"]
        return f"shard {s.get('index')}/{s.get('count')}"
    return None


def row_notes(runs: Sequence[Run], task: str) -> list[str]:
    """Protocol facts the runs recorded for a task: the judge, notes the task wrote, partial coverage."""
    notes: list[str] = []
    for i, run in enumerate(runs, 1):
        tr = run.tasks.get(task)
        if tr is None:
            continue
        res = tr.results or {}
        judge = run.manifest.get("judge")
        if isinstance(judge, dict) and judge.get("model") and any(
                isinstance((r.get("verdict_detail") or {}).get("judge"), dict) for r in tr.records):
            bad = res.get("judge_unparseable")
            notes.append(f"run {i}: judge {judge['model']}" + (f" ({bad} replies unparseable)" if bad else ""))
        if isinstance(res.get("protocol_note"), str):
            notes.append(f"run {i}: {res['protocol_note']}")
        p = partial(run, task)
        if p:
            notes.append(f"run {i}: partial ({p})")
    return notes


def model_columns(runs: Sequence[Run]) -> list[tuple[str, list[int]]]:
    """One measured column per model (several run dirs of one model, e.g. one per task, share it)."""
    cols: dict[str, list[int]] = {}
    for i, run in enumerate(runs):
        cols.setdefault(run.model_short, []).append(i)
    return list(cols.items())


def measured_cell(runs: Sequence[Run], idx: Sequence[int], row: PaperRow) -> str:
    cells = []
    for i in idx:
        run = runs[i]
        if not row.task or row.task not in run.tasks:
            continue
        v = measured(run, row)
        txt = DASH if v is None else paper_cell(v, row.scale)
        if partial(run, row.task):
            txt += "†"
        if v is not None and isinstance((run.tasks[row.task].results or {}).get("protocol_note"), str):
            txt += "‡"  # the task recorded a protocol the paper's number does not share or does not state
        if v is not None and public_tests_only(run.tasks[row.task].results):
            txt += " (not comparable: public tests only)"  # reports/comparability.py
        cells.append((i, txt))
    if not cells:
        return DASH
    if len(cells) == 1:
        return cells[0][1]
    return "; ".join(f"{t} (run {i + 1})" for i, t in cells)


# --- the blocks -----------------------------------------------------------------------------------------------------
def table4_blocks(runs: Sequence[Run]) -> list:
    from .report import Heading, Para, Table, Warn

    rows_spec = table4_rows()
    cols = model_columns(runs)
    headers = ["category", "benchmark (metric)", "task", "measured as"] + [f"measured: {m}" for m, _ in cols] + \
        [f"paper: {m}" for m in TABLE4_MODELS] + ["notes"]
    n_meas = len(cols)
    numeric = set(range(4, 4 + n_meas + len(TABLE4_MODELS)))
    rows = []
    for r in rows_spec:
        notes = [r.note] if r.note else []
        if r.task:
            notes += row_notes(runs, r.task)
        else:
            notes.insert(0, "not run offline (see below)")
        rows.append([r.category, r.label, r.task or DASH, r.result_key or DASH] +
                    [measured_cell(runs, idx, r) for _, idx in cols] +
                    [paper_cell(r.values[m], r.scale) for m in TABLE4_MODELS] + ["; ".join(notes) or DASH])
    blocks: list = [
        Heading(2, "Table 4 view: every benchmark beside the paper"),
        Para("One row per row of DeepSeek-R1's Table 4 (the paper's metric named per row; `measured as` is the "
             "results.json key that measures it); measured columns are the report's models, in percent (Codeforces "
             "rating as a rating). `—`: the paper printed no number, or nothing was measured. `†`: a partial run "
             "(fewer problems than the task's set). `‡`: measured under a protocol that differs from the paper's "
             "or that the paper does not state (split, shots, language, subset): the row's notes say which, and "
             "the number is not directly comparable to the paper's."),
        Table(headers, rows, numeric),
    ]
    known = {r.task for r in rows_spec if r.task}
    extra = []
    for m, idx in cols:
        for i in idx:
            for t, tr in runs[i].tasks.items():
                if t in known:
                    continue
                v = (tr.results or {}).get("pass@1")
                extra.append([t, f"{i + 1}: {runs[i].label}",
                              DASH if v is None else f"{100 * v:.1f}" + ("†" if partial(runs[i], t) else "")])
    if extra:
        blocks += [Para("Tasks of these runs that are not in Table 4 (no paper number):"),
                   Table(["task", "run", "pass@1"], extra, {2})]
    offline = [r for r in rows_spec if not r.task]
    if offline:
        blocks.append(Para("Rows the harness cannot run offline, and why:"))
        blocks.append(Table(["benchmark (metric)", "why"], [[r.label, r.offline] for r in offline], set()))
    sources = sorted({r.source for r in rows_spec})
    blocks.append(Para("Paper numbers: " + "; ".join(sources) + "."))
    untagged_judged = [(i, t) for i, run in enumerate(runs, 1) for t in run.tasks
                       if t in ("simpleqa", "frames") and not isinstance(run.manifest.get("judge"), dict)]
    for i, t in untagged_judged:
        blocks.append(Warn(f"Run {i}: {t} has no judge recorded in its manifest."))
    return blocks


def stage_blocks(runs: Sequence[Run]) -> list:
    """The per-stage view, when any run is tagged with a paper stage."""
    from .report import Heading, Para, Table, Warn

    tagged: dict[str, list[int]] = {}
    bad = []
    for i, run in enumerate(runs):
        st = run.manifest.get("paper_stage")
        if st is None:
            continue
        if st not in STAGES:
            bad.append(f"Run {i + 1} ({run.path.name}) has paper_stage {st!r}, not one of {', '.join(STAGES)}.")
            continue
        tagged.setdefault(st, []).append(i)
    if not tagged and not bad:
        return []
    headers = ["benchmark (metric)", "task"]
    numeric = set()
    for st in STAGES:
        headers.append(f"paper: {STAGE_TITLES[st]}")
        numeric.add(len(headers) - 1)
        if st in tagged:
            headers.append(f"measured: {st}")
            numeric.add(len(headers) - 1)
    rows = []
    for r in stage_rows():
        cells = [r.label, r.task or "not run offline"]
        for st in STAGES:
            cells.append(paper_cell(r.values[st], r.scale))
            if st in tagged:
                cells.append(measured_cell(runs, tagged[st], r))
        rows.append(cells)
    who = "; ".join(f"{st}: " + ", ".join(f"run {i + 1} ({runs[i].model_short})" for i in idx)
                    for st, idx in tagged.items())
    blocks: list = [Heading(2, "Per-stage view: runs tagged with a paper stage"),
                    Para(f"Runs tagged with `--paper-stage` beside the DeepSeek-R1 pipeline's results at each stage "
                         f"(Nature version, its Table 2). Tagged: {who or 'none'}. `†`: a partial run. `‡`: a protocol "
                         f"the paper's number does not share or state (see the Table 4 view's notes)."),
                    Table(headers, rows, numeric)]
    blocks += [Warn(b) for b in bad]
    return blocks
