"""The paper's published numbers (reports/paper/table*.csv) and the map from run manifests to their rows.

The CSVs keep the paper's values as printed (percent, Codeforces rating as an Elo-like number); conversion to the
fractions used in results.json happens here, once. Each CSV row has the paper's own row label (``model``) and a
canonical ``model_id`` shared across tables, because the paper names the same model differently in different tables
("o1-mini" in Table 4, "OpenAI-o1-mini" in Tables 2 and 5).
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

PAPER_DIR = Path(__file__).resolve().parent / "paper"
# A model listed in several tables has the same numbers in each (tests check it); the first table here wins, and it
# is the one named in reports. Table 5 first: it is the one with cons@64 for most rows.
TABLE_ORDER = ("table5", "table4", "table2", "table6")
TABLE_TITLES = {
    "table2": "Table 2 (R1-Zero vs o1)",
    "table4": "Table 4 (R1 and peers)",
    "table5": "Table 5 (distilled models)",
    "table6": "Table 6 (distillation vs RL)",
}
NON_METRIC_COLUMNS = ("model", "model_id", "source", "note")
# Metrics the paper prints as a plain number rather than a percentage.
RAW_UNIT_METRICS = {"rating": "rating"}


@dataclass(frozen=True)
class PaperValue:
    model_id: str
    row_label: str  # the row as the paper prints it
    table: str  # "table5"
    task: str  # our task id, e.g. "aime2024"
    metric: str  # "pass@1", "cons@64", "rating", "percentile"
    value: float  # as printed in the paper
    unit: str  # "percent" or "rating"
    source: str
    note: str = ""

    @property
    def fraction(self) -> float | None:
        """The value on the scale of results.json (fractions in [0, 1]); None for non-percent metrics."""
        return self.value / 100.0 if self.unit == "percent" else None

    @property
    def table_title(self) -> str:
        return TABLE_TITLES.get(self.table, self.table)


def _metric_column(col: str) -> tuple[str, str]:
    task, sep, metric = col.partition(".")
    if not sep or not task or not metric:
        raise ValueError(f"paper table column {col!r} is not '<task>.<metric>'")
    return task, metric


def load_table(name: str, directory: Path = PAPER_DIR) -> list[PaperValue]:
    path = directory / f"{name}.csv"
    out: list[PaperValue] = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        missing = [c for c in ("model", "model_id", "source") if c not in cols]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}")
        metric_cols = [c for c in cols if c not in NON_METRIC_COLUMNS]
        for lineno, row in enumerate(reader, 2):
            if not (row.get("source") or "").strip():
                raise ValueError(f"{path}:{lineno}: empty source")
            for col in metric_cols:
                cell = (row.get(col) or "").strip()
                if not cell:  # the paper leaves some cells empty
                    continue
                task, metric = _metric_column(col)
                try:
                    value = float(cell)
                except ValueError as e:
                    raise ValueError(f"{path}:{lineno}: column {col}: {cell!r} is not a number") from e
                out.append(PaperValue(
                    model_id=row["model_id"].strip(), row_label=row["model"].strip(), table=name, task=task,
                    metric=metric, value=value, unit=RAW_UNIT_METRICS.get(metric, "percent"),
                    source=row["source"].strip(), note=(row.get("note") or "").strip(),
                ))
    return out


@lru_cache(maxsize=None)
def all_values() -> tuple[PaperValue, ...]:
    return tuple(v for t in TABLE_ORDER for v in load_table(t))


def model_ids() -> list[str]:
    seen: dict[str, None] = {}
    for v in all_values():
        seen.setdefault(v.model_id, None)
    return list(seen)


def lookup(model_id: str | None, task: str, metric: str) -> PaperValue | None:
    """The paper's number for one model, task and metric (from the first table in TABLE_ORDER that has it)."""
    if not model_id:
        return None
    for v in all_values():
        if v.model_id == model_id and v.task == task and v.metric == metric:
            return v
    return None


def values_for(model_id: str | None) -> dict[tuple[str, str], PaperValue]:
    out: dict[tuple[str, str], PaperValue] = {}
    for v in all_values():
        if v.model_id == model_id:
            out.setdefault((v.task, v.metric), v)
    return out


# --- model names --------------------------------------------------------------------------------------------------

# Suffixes that name a file format, quantization or shard rather than a model: stripped before matching.
_SUFFIX = re.compile(
    r"[-_.](?:gguf|ggml|q\d(?:_[a-z0-9]+)*|iq\d(?:_[a-z0-9]+)*|f16|f32|bf16|fp16|fp8|int4|int8|awq|gptq|mlx|"
    r"\d+bit|\d{5}-of-\d{5})$"
)


def normalize_name(name: str) -> str:
    """'bartowski/DeepSeek-R1-Distill-Qwen-7B-GGUF', '/m/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf' -> one key."""
    s = str(name).strip().replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower()
    if s.endswith(".gguf"):
        s = s[: -len(".gguf")]
    while True:
        t = _SUFFIX.sub("", s)
        if t == s:
            return s
        s = t


@lru_cache(maxsize=None)
def _alias_index(path: Path = PAPER_DIR / "aliases.json") -> dict[str, str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    known = set(model_ids())
    index: dict[str, str] = {}

    def add(alias: str, mid: str) -> None:
        key = normalize_name(alias)
        if index.get(key, mid) != mid:
            raise ValueError(f"{path}: alias {alias!r} maps to both {index[key]} and {mid}")
        index[key] = mid

    for mid, aliases in data["models"].items():
        if mid not in known:
            raise ValueError(f"{path}: {mid!r} is not a model_id in any paper table")
        add(mid, mid)
        for a in aliases:
            add(a, mid)
    for mid in known:  # every table row is reachable by its own id even without an aliases.json entry
        add(mid, mid)
    return index


def resolve_model(name: str | None, model_info: dict[str, Any] | None = None) -> str | None:
    """model_id of the paper row for a run's model, or None when the paper has no row for it.

    ``name`` is the manifest's "model" (hub id, path, GGUF file, or the name given to ``r1 import --model``);
    string fields of ``model_info`` (e.g. the hub repo or file a backend resolved) are tried after it."""
    index = _alias_index()
    candidates = [name] if name else []
    for key in ("name", "hub_id", "repo_id", "model", "filename", "file", "path"):
        v = (model_info or {}).get(key)
        if isinstance(v, str):
            candidates.append(v)
    for c in candidates:
        mid = index.get(normalize_name(c))
        if mid:
            return mid
    return None
