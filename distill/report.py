"""The distilled student's measured numbers next to the paper's Table 5 row for that student (Markdown + JSON).

The paper row is found through ``reports.paper_tables`` (alias lookup: "R1-Distill-Qwen-1.5B", a hub id, a GGUF
name...). Columns are Table 5's (AIME p@1, cons@64, MATH-500, GPQA-D, LCB, CF rating) followed by any other task the
student was evaluated on; a cell the student was not evaluated on is a dash, never a zero.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.store import atomic_write_json, atomic_write_text
from reports import paper_tables
from reports.report import Heading, Para, Table, Warn, pct, render_markdown

TABLE = "table5"
DASH = "—"


def _measured(task_res: dict | None, metric: str) -> tuple[float | None, list | None]:
    if not task_res:
        return None, None
    if metric == "pass@1":
        return task_res.get("pass@1"), task_res.get("pass@1_ci")
    if metric.startswith("cons@"):
        # cons@64 is only the paper's number when 64 samples were voted on; a smaller k is another metric.
        return task_res.get(metric), None
    return task_res.get(metric), None


def build_row(student: str, paper_alias: str | None, results: dict, extra: dict | None = None) -> dict:
    """The report row as data: one entry per column with ours, the paper's value and the difference."""
    model_id = paper_tables.resolve_model(paper_alias) if paper_alias else None
    paper = {(v.task, v.metric): v for v in paper_tables.load_table(TABLE) if v.model_id == model_id}
    tasks = results.get("tasks") or {}
    columns: list[tuple[str, str]] = [(v.task, v.metric) for v in paper_tables.load_table(TABLE)
                                      if v.model_id == (model_id or v.model_id)]
    columns = list(dict.fromkeys(columns))
    columns += [(t, "pass@1") for t in tasks if (t, "pass@1") not in columns]
    cells = []
    for task, metric in columns:
        ours, ci = _measured(tasks.get(task), metric)
        pv = paper.get((task, metric))
        paper_val = (pv.fraction if pv.unit == "percent" else pv.value) if pv else None
        cells.append({
            "task": task, "metric": metric, "unit": pv.unit if pv else ("rating" if metric == "rating" else "percent"),
            "ours": ours, "ours_ci": ci, "paper": paper_val,
            "delta": (ours - paper_val) if ours is not None and paper_val is not None else None,
            "n_problems": (tasks.get(task) or {}).get("n_problems"),
            "samples_per_problem": (tasks.get(task) or {}).get("samples_per_problem"),
        })
    label = next(iter(paper.values())).row_label if paper else None
    return {"student": student, "paper_alias": paper_alias, "paper_model_id": model_id, "paper_row": label,
            "paper_table": paper_tables.TABLE_TITLES[TABLE], "paper_source": next(iter(paper.values())).source if paper else None,
            "columns": cells, **(extra or {})}


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return DASH
    return f"{value:.0f}" if unit == "rating" else pct(value)


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else (DASH if x is None else str(x))


def _header(c: dict) -> str:
    names = {"aime2024": "AIME 2024", "math500": "MATH-500", "gpqa_diamond": "GPQA-D", "livecodebench": "LCB",
             "codeforces": "CF"}
    return f"{names.get(c['task'], c['task'])} {c['metric']}"


def render(row: dict) -> str:
    cols = row["columns"]
    headers = ["model"] + [_header(c) for c in cols]
    ours = [f"ours: {row['student']}"]
    for c in cols:
        s = _fmt(c["ours"], c["unit"])
        if c["ours_ci"] and c["ours"] is not None:
            s += f" [{pct(c['ours_ci'][0])}, {pct(c['ours_ci'][1])}]"
        ours.append(s)
    rows = [ours]
    if row["paper_row"]:
        rows.append([f"paper: {row['paper_row']}"] + [_fmt(c["paper"], c["unit"]) for c in cols])
        rows.append(["ours − paper"] + [DASH if c["delta"] is None else
                                         (f"{c['delta']:+.0f}" if c["unit"] == "rating" else f"{100 * c['delta']:+.1f}")
                                         for c in cols])
    blocks: list[Any] = [Heading(1, f"Distilled student: {row['student']}"),
                         Para(f"Measured numbers next to the paper's {row['paper_table']}; source: {row['paper_source'] or 'no paper row'}. "
                              "Percent pass@1 with the 95% bootstrap CI over problems; CF is a rating.")]
    if not row["paper_row"]:
        blocks.append(Warn(f"no paper row for {row['paper_alias']!r}: set the recipe's student.paper_model to a "
                           "Table 5 model (e.g. R1-Distill-Qwen-7B)"))
    if row.get("train_eval_overlap") and not row.get("decontaminated", True):
        blocks.append(Warn(f"contaminated: {len(row['train_eval_overlap'])} evaluated problem(s) were in the teacher "
                           "data the student was trained on (allowed by the recipe)"))
    blocks.append(Table(headers, rows, set(range(1, len(headers)))))
    counts = [f"{c['task']}: {c['n_problems']} problems × {c['samples_per_problem']}" for c in cols
              if c["n_problems"] is not None and c["metric"] == "pass@1"]
    if counts:
        blocks.append(Para("Evaluated on " + "; ".join(counts) + "."))
    if row.get("filters"):
        f = row["filters"]
        drops = ", ".join(f"{k} {v}" + (" (report only)" if k in f.get("report_only", []) else "")
                          for k, v in f.get("dropped", {}).items())
        blocks.append(Para(f"Teacher samples: {f.get('input')} → kept {f.get('kept')} (dropped: {drops or 'none'})."))
    if row.get("dataset"):
        d = row["dataset"]
        blocks.append(Para(f"SFT dataset: {d.get('n_examples')} examples over {d.get('n_problems')} problems, "
                           f"format {d.get('format')}, sha256 {str(d.get('dataset_sha256'))[:16]}."))
    if row.get("train"):
        t = row["train"]
        blocks.append(Para(f"SFT: {t.get('trainer')}, {t.get('global_step', '?')} steps, "
                           f"train loss {_num(t.get('train_loss'))}, {t.get('runtime_s')} s."))
    return render_markdown(blocks)


def write_report(row: dict, out: Path) -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "report_row.md", out / "report_row.json"
    atomic_write_text(md, render(row))
    atomic_write_json(js, row)
    return {"markdown": md, "json": js}


def load_row(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
