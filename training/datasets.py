"""Training data from datasets: *prompt datasets* (problem + verifiable answer) for GRPO, rejection sampling and
teacher generation, and *trace datasets* (prompt + reasoning completion) for the cold start, stage-3 SFT and
distillation. A source is a Hugging Face id (split, revision, config) and/or a local jsonl / json / parquet file,
read through a column mapping: a built-in ``format`` for the common public datasets, and ``columns`` to rename.

A source in a recipe::

    grpo:
      data:
        hf: BytedTsinghua-SIA/DAPO-Math-17k    # hub id (split / revision / config optional)
        split: train
        path: data/dapo-math-17k.parquet       # local copy: used when the hub is offline or unreachable
        format: dapo_math                      # built-in mapping (FORMATS below)
        columns: {answer: my_answer_column}    # optional: field -> column (dotted for nested, a list = first present)
        limit: 20000                           # optional: rows [offset : offset + limit]

A bare string is a local path (``format: auto``: a ``messages`` column makes it a trace file). Which copy was read is
said in the load report (``origin``): the hub, or the local path and why.

Rows out (plain dicts):

  prompt  {"id", "problem", "answer", "kind": "math", "source"}  - the prompt is rebuilt from ``problem`` exactly as
          evaluation builds a math prompt (``tasks.math500.math_prompt``), so the reward sees what the eval sees
  trace   {"id", "problem", "messages": [user, assistant], "source"} - the assistant turn in the R1 layout
          ``<think>\\n...\\n</think>\\n answer`` (ShareGPT's begin/end_of_thought tags are rewritten into it)

Built-in formats (column names from the dataset cards):

  math          MATH train (EleutherAI/hendrycks_math): problem, solution; answer = the solution's last \\boxed{}
  gsm8k         openai/gsm8k (config main): question, answer; answer = the text after "####"
  numina_cot    AI-MO/NuminaMath-CoT: problem, solution (last \\boxed{}), messages (trace)
  dapo_math     BytedTsinghua-SIA/DAPO-Math-17k: prompt (chat list; DAPO's "Answer:" instruction stripped),
                reward_model.ground_truth, extra_info.index; open-r1/DAPO-Math-17k-Processed: prompt (text), solution
  openr1_math   open-r1/OpenR1-Math-220k: problem, answer, uuid; trace = the first generation marked correct by
                correctness_math_verify (then correctness_llama), with is_reasoning_complete when present
  sharegpt      bespokelabs/Bespoke-Stratos-17k, open-thoughts/OpenThoughts-114k: conversations [{from, value}]
  messages      open-r1/Mixture-of-Thoughts (config all|math|code|science): messages [{role, content}]
  prompt/trace  generic: problem + answer / messages (or prompt + completion); name the columns under ``columns``
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from harness.config import THINK_PREFIX
from harness.errors import DataMissing, UserError

KINDS = ("prompt", "trace")


# ---------------------------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class Source:
    """Where a dataset comes from and how to read it (see the module docstring)."""

    hf: str | None = None
    path: str | None = None
    split: str = "train"
    revision: str | None = None
    config: str | None = None
    format: str = "auto"
    columns: Mapping[str, Any] = field(default_factory=dict)
    limit: int | None = None
    offset: int = 0
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.hf or (Path(self.path).name if self.path else "?")


_SOURCE_KEYS = {f for f in Source.__dataclass_fields__}


def parse_source(value: Any, where: str) -> Source:
    """A recipe value (mapping, or a local path string) as a Source; ``where`` is the recipe key, for errors."""
    if isinstance(value, Source):
        return value
    if isinstance(value, (str, Path)):
        return Source(path=str(value))
    if not isinstance(value, Mapping):
        raise UserError(f"{where}: a data source is a mapping (hf, path, format, columns, ...) or a file path, "
                        f"got {type(value).__name__}")
    unknown = sorted(set(value) - _SOURCE_KEYS)
    if unknown:
        raise UserError(f"{where}: unknown data source key(s) {', '.join(unknown)} "
                        f"(known: {', '.join(sorted(_SOURCE_KEYS))})")
    src = Source(**{k: v for k, v in value.items() if v is not None})
    if not (src.hf or src.path):
        raise UserError(f"{where}: a data source needs `hf` (a hub id) or `path` (a local file), or both")
    if src.format not in FORMATS and src.format != "auto":
        raise UserError(f"{where}: unknown format {src.format!r} (built-in: {', '.join(sorted(FORMATS))}, or auto)")
    if not isinstance(src.columns, Mapping):
        raise UserError(f"{where}.columns: a mapping field -> column name")
    return src


def local_candidates(path: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where a recipe's ``path:`` is looked for: itself if absolute, else the working dir, then the data dir."""
    from harness.data import data_dir as resolve_data_dir

    p = Path(path).expanduser()
    if p.is_absolute():
        return [p]
    base = resolve_data_dir(data_dir)
    return [p.resolve()] + ([base / p] if base else [])


def local_path(path: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """An existing file: absolute, relative to the working dir, or relative to the data dir (R1_DATA_DIR)."""
    return next((c for c in local_candidates(path, data_dir) if c.is_file()), None)


def read_file(path: Path) -> list[dict]:
    """Rows of a local jsonl / json / parquet file."""
    from harness.data import json_lines

    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if name.endswith(".jsonl"):
        return [obj for _, obj in json_lines(path)]
    if name.endswith(".json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:  # JSON lines under a .json name (common on the hub)
            return [obj for _, obj in json_lines(path)]
        if isinstance(data, dict):  # {"data": [...]} / {"train": [...]}
            lists = [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if len(lists) == 1 else None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise UserError(f"{path}: expected a JSON list of objects (or JSON lines)")
        return data
    raise UserError(f"{path}: unsupported data file type (jsonl, json or parquet)")


def read_rows(src: Source, data_dir=None) -> tuple[list[dict], str]:
    """The raw rows of a source and where they came from (said in words, for the run record and the dry-run)."""
    local = local_path(src.path, data_dir) if src.path else None
    why_local = ""
    if src.hf:
        from harness import hub

        if hub.offline(datasets=True):
            why_local = "hub offline (HF_HUB_OFFLINE=1)"
        elif why := hub.unreachable():
            why_local = f"hub {src.hf}: {why}"
        else:
            try:
                import datasets

                ds = datasets.load_dataset(src.hf, src.config, split=src.split, revision=src.revision)
                rows = [dict(r) for r in ds]
                return rows, f"hub {src.hf}" + (f"@{src.revision}" if src.revision else "") + \
                    (f" ({src.config}/{src.split})" if src.config else f" ({src.split})")
            except Exception as e:  # noqa: BLE001 - network / missing-repo errors differ by version
                why_local = f"hub {src.hf} unreachable ({type(e).__name__})"
        if local is None:
            hint = (f"; no local copy at {' or '.join(map(str, local_candidates(src.path, data_dir)))}" if src.path
                    else "; add `path:` with a local copy")
            raise DataMissing(f"data source {src.label}: {why_local}{hint}")
    elif local is None:
        raise DataMissing(f"data source {src.label}: no such file {src.path} (looked at "
                          f"{' and '.join(map(str, local_candidates(src.path, data_dir)))})")
    rows = read_file(local)
    return rows, f"local file {local}" + (f" ({why_local}; hub id {src.hf})" if why_local else "")


# ---------------------------------------------------------------------------------------------- columns
_MISSING = object()


def _get(row: Mapping, path: str) -> Any:
    cur: Any = row
    for part in path.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        else:
            return _MISSING
    return cur


class Columns:
    """A row reader with the format's column names, overridden by the recipe's ``columns``; a missing required
    column is one UserError naming the field, the columns looked for and the columns present."""

    def __init__(self, defaults: Mapping[str, Any], overrides: Mapping[str, Any], label: str, present: Sequence[str]):
        self.map = {**defaults, **dict(overrides or {})}
        self.label = label
        self.present = list(present)

    def candidates(self, name: str) -> list[str]:
        v = self.map.get(name)
        if v is None:
            return []
        return [v] if isinstance(v, str) else list(v)

    def has(self, name: str, row: Mapping) -> bool:
        return any(_get(row, c) is not _MISSING for c in self.candidates(name))

    def get(self, row: Mapping, name: str, required: bool = True) -> Any:
        for c in self.candidates(name):
            v = _get(row, c)
            if v is not _MISSING:
                return v
        if not required:
            return None
        cols = self.candidates(name)
        looked = " or ".join(repr(c) for c in cols) if cols else "(no column mapped)"
        raise UserError(f"data source {self.label}: field {name!r} needs column {looked}, not found; columns "
                        f"present: {', '.join(self.present) or '(none)'} (map it with columns: {{{name}: COLUMN}})")


# ---------------------------------------------------------------------------------------------- answers
def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) with balanced braces, as the MATH graders take it."""
    if not isinstance(text, str):
        return None
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        m = re.match(r"\\boxed\s+([^\s$]+)", text[start:])  # "\boxed 5"
        return m.group(1) if m else None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j].strip() or None
    return None


def gsm8k_answer(text: str) -> str | None:
    if not isinstance(text, str) or "####" not in text:
        return None
    return text.rsplit("####", 1)[1].strip().replace(",", "") or None


_DAPO_HEAD = re.compile(r"^\s*Solve the following math problem step by step\..*?\n\n", re.S)
_DAPO_TAIL = re.compile(r"\n\n\s*Remember to put your answer on its own line after \"Answer:\"\.?\s*$", re.S)


def dapo_problem(prompt: Any) -> str:
    """The problem inside DAPO's prompt: the user turn without DAPO's "Answer: $Answer" instruction around it (our
    prompt asks for \\boxed{} like the evaluation does)."""
    if isinstance(prompt, (list, tuple)):
        prompt = "\n".join(str(m.get("content") or "") for m in prompt if isinstance(m, Mapping)
                           and m.get("role", "user") == "user")
    text = str(prompt or "")
    return _DAPO_TAIL.sub("", _DAPO_HEAD.sub("", text, count=1)).strip()


# ---------------------------------------------------------------------------------------------- traces
_THOUGHT = re.compile(r"<\|begin_of_thought\|>(.*?)<\|end_of_thought\|>", re.S)
_SOLUTION = re.compile(r"<\|begin_of_solution\|>(.*?)(?:<\|end_of_solution\|>|$)", re.S)
_ROLES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant", "system": "system"}


def r1_layout(text: str) -> str:
    """An assistant turn in the R1 layout ``<think>\\n reasoning \\n</think>\\n\\n answer``: Bespoke-Stratos /
    OpenThoughts write ``<|begin_of_thought|>...<|end_of_thought|> <|begin_of_solution|>...<|end_of_solution|>``."""
    m = _THOUGHT.search(text)
    if not m:
        return text
    sol = _SOLUTION.search(text, m.end())
    answer = (sol.group(1) if sol else text[m.end():]).strip()
    return f"{THINK_PREFIX}{m.group(1).strip()}\n</think>\n\n{answer}"


def chat_messages(msgs: Any, label: str, role_key: str = "role", text_key: str = "content") -> list[dict] | str:
    """[{"role", "content"}] from a chat list (ShareGPT's from/value too); a skip reason (str) when unusable."""
    if not isinstance(msgs, (list, tuple)) or not msgs:
        return "empty conversation"
    out = []
    for m in msgs:
        if not isinstance(m, Mapping):
            return "conversation entry is not an object"
        role = _ROLES.get(str(m.get(role_key, "")).lower())
        if role is None:
            return f"unknown role {m.get(role_key)!r}"
        content = m.get(text_key)
        if not isinstance(content, str):
            return "message without text"
        out.append({"role": role, "content": r1_layout(content) if role == "assistant" else content})
    if not any(m["role"] == "assistant" for m in out):
        return "no assistant turn"
    if not any(m["role"] == "user" for m in out):
        return "no user turn"
    return out


def _user_text(messages: list[dict]) -> str:
    return next((m["content"] for m in messages if m["role"] == "user"), "")


# ---------------------------------------------------------------------------------------------- formats
Row = Mapping[str, Any]
Result = "dict | str"  # a row, or a skip reason


@dataclass(frozen=True)
class Format:
    name: str
    hf: str | None  # the public dataset it reads (documentation; recipes name it as `hf`)
    columns: Mapping[str, Any]
    prompt: Callable[[Row, Columns], Any] | None = None
    trace: Callable[[Row, Columns], Any] | None = None

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k in KINDS if getattr(self, k) is not None)


def _problem_answer(answer_fn: Callable[[Any], str | None], answer_field: str, why: str):
    def build(row: Row, c: Columns):
        problem = c.get(row, "problem")
        answer = answer_fn(c.get(row, answer_field))
        if not isinstance(problem, str) or not problem.strip():
            return "empty problem"
        if answer is None or not str(answer).strip():
            return why
        return {"problem": problem, "answer": str(answer).strip()}
    return build


def _messages_trace(row: Row, c: Columns):
    msgs = chat_messages(c.get(row, "messages"), c.label)
    if isinstance(msgs, str):
        return msgs
    return {"problem": _user_text(msgs), "messages": msgs}


def _generic_prompt(row: Row, c: Columns):
    problem, answer = c.get(row, "problem"), c.get(row, "answer")
    if not isinstance(problem, str) or not problem.strip():
        return "empty problem"
    if answer is None or str(answer).strip() == "":
        return "empty answer"
    return {"problem": problem, "answer": str(answer).strip()}


def _generic_trace(row: Row, c: Columns):
    if c.has("messages", row):
        return _messages_trace(row, c)
    prompt, completion = c.get(row, "prompt"), c.get(row, "completion")
    if not isinstance(prompt, str) or not isinstance(completion, str) or not completion.strip():
        return "empty prompt or completion"
    return {"problem": prompt, "messages": [{"role": "user", "content": prompt},
                                            {"role": "assistant", "content": r1_layout(completion)}]}


def _dapo_prompt(row: Row, c: Columns):
    problem = dapo_problem(c.get(row, "prompt"))
    answer = c.get(row, "answer")
    if not problem:
        return "empty problem"
    if answer is None or str(answer).strip() == "":
        return "empty answer"
    return {"problem": problem, "answer": str(answer).strip()}


def _openr1_trace(row: Row, c: Columns):
    """The first generation a checker marked correct: math-verify first, the Llama judge second (the card's
    correctness columns), and only one whose reasoning finished (is_reasoning_complete) when that column exists."""
    problem = c.get(row, "problem")
    gens = c.get(row, "generations")
    if not isinstance(gens, (list, tuple)) or not gens:
        return "no generations"
    complete = c.get(row, "complete", required=False)
    for col in c.candidates("correct"):
        marks = _get(row, col)
        if marks is _MISSING or not isinstance(marks, (list, tuple)):
            continue
        for i, ok in enumerate(marks):
            if ok is True and i < len(gens) and isinstance(gens[i], str) and \
                    (not isinstance(complete, (list, tuple)) or i >= len(complete) or complete[i] is not False):
                return {"problem": problem, "generation_index": i, "verified_by": col,
                        "messages": [{"role": "user", "content": problem},
                                     {"role": "assistant", "content": gens[i]}]}
    if not any(_get(row, col) is not _MISSING for col in c.candidates("correct")):
        c.get(row, "correct")  # raises: names the correctness columns and the columns present
    return "no verified-correct generation"


def _sharegpt_trace(row: Row, c: Columns):
    msgs = chat_messages(c.get(row, "conversations"), c.label, role_key="from", text_key="value")
    if isinstance(msgs, str):
        return msgs
    # The dataset's system prompt describes the begin/end_of_thought tags rewritten above: kept out.
    msgs = [m for m in msgs if m["role"] != "system"]
    return {"problem": _user_text(msgs), "messages": msgs}


FORMATS: dict[str, Format] = {f.name: f for f in [
    Format("math", "EleutherAI/hendrycks_math", {"problem": "problem", "solution": "solution", "id": "unique_id"},
           prompt=_problem_answer(last_boxed, "solution", "no \\boxed{} answer in the solution")),
    Format("gsm8k", "openai/gsm8k", {"problem": "question", "answer": "answer"},
           prompt=_problem_answer(gsm8k_answer, "answer", "no '#### answer' line")),
    Format("numina_cot", "AI-MO/NuminaMath-CoT", {"problem": "problem", "solution": "solution", "messages": "messages"},
           prompt=_problem_answer(last_boxed, "solution", "no \\boxed{} answer in the solution"),
           trace=_messages_trace),
    Format("dapo_math", "BytedTsinghua-SIA/DAPO-Math-17k",
           {"prompt": "prompt", "answer": ["reward_model.ground_truth", "solution"], "id": "extra_info.index"},
           prompt=_dapo_prompt),
    Format("openr1_math", "open-r1/OpenR1-Math-220k",
           {"problem": "problem", "answer": "answer", "id": "uuid", "generations": "generations",
            "correct": ["correctness_math_verify", "correctness_llama"], "complete": "is_reasoning_complete"},
           prompt=_generic_prompt, trace=_openr1_trace),
    Format("sharegpt", "bespokelabs/Bespoke-Stratos-17k", {"conversations": "conversations"}, trace=_sharegpt_trace),
    Format("messages", "open-r1/Mixture-of-Thoughts", {"messages": "messages"}, trace=_messages_trace),
    Format("prompt", None, {"problem": "problem", "answer": "answer", "id": "id"}, prompt=_generic_prompt),
    Format("trace", None, {"messages": "messages", "prompt": "prompt", "completion": "completion", "id": "id"},
           trace=_generic_trace),
]}
ALIASES = {"bespoke_stratos": "sharegpt", "openthoughts": "sharegpt", "mixture_of_thoughts": "messages",
           "hendrycks_math": "math", "math_train": "math", "numina": "numina_cot", "dapo": "dapo_math",
           "openr1": "openr1_math"}
FORMATS.update({a: FORMATS[n] for a, n in ALIASES.items()})
_HF_FORMATS = {f.hf.lower(): f.name for f in FORMATS.values() if f.hf}
_HF_FORMATS.update({"open-thoughts/openthoughts-114k": "sharegpt", "open-r1/dapo-math-17k-processed": "dapo_math",
                    "hendrycks/competition_math": "math", "digitalearth/hendrycks_math": "math"})


def sniff_format(row: Mapping, kind: str) -> str:
    """A built-in format from a row's columns (``format: auto`` without a known hub id)."""
    cols = set(row)
    if "reward_model" in cols and "prompt" in cols:
        return "dapo_math"
    if "generations" in cols and any(c.startswith("correctness_") for c in cols):
        return "openr1_math"
    if "conversations" in cols:
        return "sharegpt"
    if kind == "trace":
        return "messages" if "messages" in cols else "trace"
    if "question" in cols and "####" in str(row.get("answer", "")):
        return "gsm8k"
    if "solution" in cols and "answer" not in cols:
        return "numina_cot" if "messages" in cols else "math"
    return "prompt"


def resolve_format(src: Source, kind: str, first_row: Mapping | None) -> Format:
    name = src.format
    if name == "auto":
        name = _HF_FORMATS.get((src.hf or "").lower()) or sniff_format(first_row or {}, kind)
    fmt = FORMATS[name]
    if getattr(fmt, kind) is None:
        ok = sorted(n for n, f in FORMATS.items() if getattr(f, kind) is not None and n not in ALIASES)
        raise UserError(f"data source {src.label}: format {name!r} has no {kind} mapping (it gives "
                        f"{', '.join(fmt.kinds)} rows); {kind} formats: {', '.join(ok)}")
    return fmt


# ---------------------------------------------------------------------------------------------- loading
@dataclass
class Loaded:
    """Rows of one source and the facts the run record and the dry-run show."""

    rows: list[dict]
    source: Source
    kind: str
    format: str
    origin: str
    rows_read: int
    skipped: dict[str, int] = field(default_factory=dict)
    decontamination: dict[str, Any] | None = None

    def report(self) -> dict[str, Any]:
        out = {"source": self.source.label, "kind": self.kind, "format": self.format, "origin": self.origin,
               "rows_read": self.rows_read, "skipped": dict(self.skipped), "rows": len(self.rows)}
        if self.decontamination is not None:
            out["decontamination"] = self.decontamination
            # the headline numbers at the top, for one-line summaries (distill's dry-run reads these)
            out["kept"] = len(self.rows)
            out["dropped"] = self.decontamination.get("dropped", 0)
            out["by_benchmark"] = self.decontamination.get("by_benchmark", {})
        return out


def load(source: Any, kind: str, *, data_dir=None, where: str = "data") -> Loaded:
    """Rows of ``kind`` ("prompt" or "trace") from a source (a Source, a recipe mapping or a path)."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: expected one of {KINDS}")
    src = parse_source(source, where)
    raw, origin = read_rows(src, data_dir)
    end = src.offset + src.limit if src.limit else None
    raw = raw[src.offset:end]
    if not raw:
        raise UserError(f"{where}: data source {src.label} ({origin}) has no rows"
                        + (f" in [{src.offset}:{end}]" if src.offset or end else ""))
    fmt = resolve_format(src, kind, raw[0])
    present = sorted(set().union(*(r.keys() for r in raw[:100])))
    cols = Columns(fmt.columns, src.columns, f"{src.label} ({where}, format {fmt.name})", present)
    build = getattr(fmt, kind)
    rows: list[dict] = []
    skipped: dict[str, int] = {}
    for i, r in enumerate(raw):
        out = build(r, cols)
        if isinstance(out, str):
            skipped[out] = skipped.get(out, 0) + 1
            continue
        rid = cols.get(r, "id", required=False)
        out["id"] = str(rid) if rid is not None else str(src.offset + i)
        out["source"] = src.label
        if kind == "prompt":
            out["kind"] = "math"
        rows.append(out)
    if not rows:
        raise UserError(f"{where}: data source {src.label} ({origin}): none of {len(raw)} rows was usable as a "
                        f"{kind} row ({', '.join(f'{k}: {v}' for k, v in skipped.items())})")
    return Loaded(rows, src, kind, fmt.name, origin, len(raw), skipped)


def load_decontaminated(source: Any, kind: str, *, data_dir=None, where: str = "data", enabled: bool = True,
                        ngram: int | None = None, exclude_tasks: Sequence[str] = ()) -> Loaded:
    """``load`` then ``training.decontam.decontaminate`` against every benchmark task (the drop counts go into the
    report). ``enabled=False`` still records that nothing was checked."""
    from .decontam import DEFAULT_NGRAM, decontaminate

    loaded = load(source, kind, data_dir=data_dir, where=where)
    if not enabled:
        loaded.decontamination = {"enabled": False}
        return loaded
    kept, report = decontaminate(loaded.rows, n=ngram or DEFAULT_NGRAM, data_dir=data_dir,
                                 exclude_tasks=exclude_tasks)
    if not kept:
        raise UserError(f"{where}: every row of {loaded.source.label} overlaps a benchmark "
                        f"({report['by_benchmark']}); nothing left to train on")
    loaded.rows = kept
    loaded.decontamination = report
    return loaded


# ---------------------------------------------------------------------------------------------- uses
def prompt_messages(row: Mapping) -> list[dict]:
    """The chat messages of a prompt row: the evaluation's math prompt (problem + DeepSeek's boxed instruction)."""
    from tasks.math500 import math_prompt

    return list(math_prompt(row["problem"]).messages)


def sft_rows(loaded: Loaded | list[dict]) -> list[dict]:
    """``[{"messages": [...]}]`` as training.sft.run_sft takes them."""
    rows = loaded.rows if isinstance(loaded, Loaded) else loaded
    return [{"messages": r["messages"]} for r in rows]


def prompt_task(name: str, rows: list[dict]):
    """A harness task over prompt rows (math verifier, the evaluation's math prompt), registered under ``name`` in
    this process so the runner (``harness.runner.evaluate``) and curation can sample and score a training dataset
    like any benchmark: rejection sampling (stage 3) and teacher generation."""
    from harness.task import Problem, registry
    from tasks.math500 import MathTask

    problems = [Problem(id=r["id"], gold=r["answer"], question=r["problem"], meta={"source": r.get("source")})
                for r in rows]

    class PromptDatasetTask(MathTask):
        default_k = 1
        from_dataset = True

        def load_problems(self, data_dir=None):
            self.data_hashes = {"rows": str(len(problems))}
            return list(problems)

        def describe(self):
            return {"dataset": name, "rows": len(problems)}

    task = PromptDatasetTask()
    task.name = name
    reg = registry()
    if name in reg and not getattr(reg[name], "from_dataset", False):
        raise UserError(f"data task name {name!r} is a benchmark's name: name the source otherwise")
    reg[name] = task
    return task


# ---------------------------------------------------------------------------------------------- GRPO prompts
_PREPARED: dict[str, Loaded] = {}
_BY_SOURCE: dict[str, Loaded] = {}  # the last preparation of a source, whatever its decontamination settings


def _source_key(s) -> str:
    return json.dumps([s.data, s.task, s.train_offset, s.train_limit, s.train_filter], sort_keys=True, default=str)


def _prep_key(where: str, data: Any, task: Any, offset: int, limit: Any, filt: Any, n: int, enabled: bool,
              exclude: Sequence[str], data_dir: Any) -> str:
    return json.dumps([where, data, task, offset, limit, filt, n, enabled, sorted(exclude), str(data_dir)],
                      sort_keys=True, default=str)


def task_rows(task_name: str, data_dir=None, offset: int = 0, limit: int | None = None,
              meta_filter: Mapping[str, Any] | None = None, seed: int = 0) -> list[dict]:
    """Prompt rows from a harness task's problems (the toy `arith`, or a benchmark when the recipe allows it):
    ``problem`` is the task's question, ``messages`` its own prompt, and the verifier fields its rewards need."""
    from harness.task import get_task

    from .grpo import task_kind

    task = get_task(task_name)
    kind = task_kind(task)
    end = offset + limit if limit else None
    problems = [p for p in task.problems(data_dir, end)[offset:end]
                if all(p.meta.get(k) == v for k, v in (meta_filter or {}).items())]
    rows = []
    for p in problems:
        pr = task.prompt(p, seed)
        row = {"id": p.id, "problem": p.question, "messages": list(pr.messages), "kind": kind, "task": task.name,
               "source": f"task:{task.name}"}
        if kind == "math":
            row["answer"] = task.gold_answer(p.gold) if hasattr(task, "gold_answer") else str(p.gold)
        elif kind == "choice":
            row["answer"] = str(pr.meta.get("gold_letter") or p.gold)
        else:
            if getattr(p, "tests", None) is None:
                raise UserError(f"GRPO: task {task.name} has no per-problem test list to reward code with")
            row.update(answer="", tests=json.dumps(p.tests), mode=getattr(p, "mode", "stdin"),
                       func_name=getattr(p, "func_name", None) or "")
        rows.append(row)
    return rows


def grpo_prompts(s, *, where: str = "grpo", data_dir=None, decontaminate: bool = True,
                 ngram: int | None = None) -> Loaded:
    """The prompt rows a GRPO stage trains on (``s``: GRPOSettings): ``s.data`` (a prompt dataset) or ``s.task``,
    decontaminated; memoized per process so the dry-run, the pipeline record and the trainer see the same rows."""
    from .decontam import DEFAULT_NGRAM, decontaminate as run_decontam

    if s.data is not None and s.task:
        raise UserError(f"{where}: set one of {where}.data (a prompt dataset) and {where}.task, not both")
    if s.data is None and not s.task:
        raise UserError(f"{where}: no training prompts: set {where}.data (a prompt dataset, e.g. {{hf: "
                        f"BytedTsinghua-SIA/DAPO-Math-17k, path: LOCAL_COPY}}) or {where}.task")
    n = ngram or DEFAULT_NGRAM
    exclude = [s.task] if s.task else []
    key = _prep_key(where, s.data, s.task, s.train_offset, s.train_limit, s.train_filter, n, decontaminate, exclude,
                    data_dir)
    if key in _PREPARED:
        return _PREPARED[key]
    if s.data is not None:
        loaded = load_decontaminated(s.data, "prompt", data_dir=data_dir, where=f"{where}.data",
                                     enabled=decontaminate, ngram=n)
    else:
        rows = task_rows(s.task, data_dir, s.train_offset, s.train_limit, s.train_filter, s.seed)
        if not rows:
            end = s.train_offset + s.train_limit if s.train_limit else None
            raise UserError(f"{where}.task: no training problems in {s.task}[{s.train_offset}:{end}]")
        loaded = Loaded(rows, Source(name=f"task:{s.task}"), "prompt", "task", f"harness task {s.task}", len(rows))
        if decontaminate:
            # The task itself is what trains (generated `arith`, or a benchmark the recipe explicitly allows):
            # matching it against its own index would drop every row, so it is excluded and named in the report.
            kept, report = run_decontam(rows, n=n, data_dir=data_dir, exclude_tasks=exclude)
            if not kept:
                raise UserError(f"{where}.task: every {s.task} problem overlaps another benchmark "
                                f"({report['by_benchmark']})")
            loaded.rows, loaded.decontamination = kept, report
        else:
            loaded.decontamination = {"enabled": False}
    _PREPARED[key] = _BY_SOURCE[_source_key(s)] = loaded
    return loaded


def grpo_rows(s, tokenizer=None, data_dir=None, loaded: Loaded | None = None) -> list[dict]:
    """TRL rows {prompt, gold, kind, task, problem_id (+ tests, mode, func_name)} for GRPOSettings ``s``: the prompt
    is the evaluation's messages rendered with ``s.template`` (training/grpo.render_prompt)."""
    from .grpo import render_prompt

    loaded = loaded or _BY_SOURCE.get(_source_key(s)) or grpo_prompts(s, data_dir=data_dir)
    out = []
    for r in loaded.rows:
        # R1-Zero's template wraps the bare question [R1 Table 1]; chat prompts are the evaluation's math prompt.
        msgs = r.get("messages") or ([{"role": "user", "content": r["problem"].strip()}] if s.template == "r1_zero"
                                     else prompt_messages(r))
        row = {"prompt": render_prompt(msgs, s.template, s.think_prefix, tokenizer), "gold": r["answer"],
               "kind": r.get("kind", "math"), "task": r.get("task") or r.get("source") or "", "problem_id": r["id"]}
        for k in ("tests", "mode", "func_name"):
            if k in r:
                row[k] = r[k]
        out.append(row)
    return out


# ---------------------------------------------------------------------------------------------- teacher / sampling
def task_name_for(src: Source) -> str:
    """The harness task name a prompt dataset is registered under: ``data_<label>`` (never a benchmark's name)."""
    return "data_" + (re.sub(r"[^A-Za-z0-9]+", "_", src.label).strip("_").lower() or "source")


def register_prompt_sources(sources: Any, *, where: str = "teacher.data", data_dir=None, decontaminate: bool = True,
                            ngram: int | None = None) -> tuple[list[str], list[dict]]:
    """Each prompt-dataset source (one, or a list) loaded, decontaminated and registered as a harness task, so a
    teacher (distillation) or rejection sampling (stage 3) samples it with ``harness.runner.evaluate`` and the
    shared verifier scores it. Returns the task names and each source's load report (for the run record)."""
    if sources is None:
        return [], []
    items = sources if isinstance(sources, (list, tuple)) else [sources]
    names, reports = [], []
    for i, item in enumerate(items):
        w = f"{where}[{i}]" if isinstance(sources, (list, tuple)) else where
        loaded = load_decontaminated(item, "prompt", data_dir=data_dir, where=w, enabled=decontaminate, ngram=ngram)
        name = task_name_for(loaded.source)
        if name in names:
            raise UserError(f"{w}: two sources named {loaded.source.label!r}; give one a `name:`")
        prompt_task(name, loaded.rows)
        names.append(name)
        reports.append({"task": name, **loaded.report()})
    return names, reports


__all__ = ["Source", "Format", "FORMATS", "Loaded", "parse_source", "read_rows", "read_file", "load",
           "load_decontaminated", "last_boxed", "gsm8k_answer", "dapo_problem", "r1_layout", "prompt_messages",
           "sft_rows", "prompt_task", "resolve_format", "task_rows", "grpo_prompts", "grpo_rows",
           "register_prompt_sources", "task_name_for"]
