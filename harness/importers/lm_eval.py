"""lm-evaluation-harness ``--log_samples`` output -> our problems, so our verifiers can rescore lm-eval's generations.

Input: one ``samples_<lm-eval task>_<timestamp>.jsonl`` file, or a directory searched recursively for them (lm-eval
writes one file per task, so a 57-subject MMLU run is 57 files). Each line is one (doc, filter) pair:
``doc_id``, ``doc``, ``target``, ``resps`` (per request, the list of generated strings), ``filtered_resps``,
``filter``, ``metrics`` and the metric values. A doc appears once per filter with the same ``resps``; the first line
wins. Only generative output (``generate_until``) can be rescored: log-likelihood tasks are refused.

Mapping to our problem ids:
- ``mmlu``: ``<subject>/<doc_id>``; the subject is ``doc["subject"]`` (cais/mmlu) or the MMLU subject named in the
  lm-eval task name (``mmlu_abstract_algebra_generative``, a local ``r1_mmlu_abstract_algebra``). lm-eval's doc_id is
  the row in the subject's test split, which is our row index. When our data is available every doc is checked
  against it (same question text, same gold letter), and a doc whose row moved is found by its question text.
- ``gpqa_diamond``: ``doc["Record ID"]``; lm-eval shuffles the options itself, so the gold letter comes from
  ``target`` and the permutation is recovered by matching ``doc["choices"]`` to the original answer columns; both go
  into each sample's ``prompt_meta`` exactly as our own runs store them.
- tasks whose problems carry the dataset's own ids: ``mmlu_pro`` ``doc["question_id"]``, ``ifeval`` ``doc["key"]``,
  ``cluewsc`` ``doc["idx"]``, ``ceval`` ``<subject>/<doc["id"]>`` (C-Eval ids restart per subject; the subject is
  ``doc["subject"]`` or the one named in the lm-eval task name, ``ceval-valid_<subject>``).
- tasks whose ids are our row index (``drop``, ``cnmo2024``, ``simpleqa``, ``frames``, ``mmlu_redux``): lm-eval's
  doc_id counts rows of *its* copy (DROP's hub split, MMLU-Redux per subject), so the doc is found in our data by its
  question text (``question``/``problem``/``Prompt``/``prompt``, DROP's ``passage`` + ``question``; ties broken by the
  options and the subject). Our data must be available.
- any other task: the first of ``problem_id``, ``unique_id``, ``id``, ``task_id``, ``question_id``, ``key``, ``idx``.

Errors name the file and line (and the field), never a doc's text: GPQA docs must not leak into logs.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from ..errors import UserError
from ..data import json_lines
from . import ImportedProblem

LETTERS = "ABCD"
_FILE_RE = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[0-9.\-]+)\.jsonl$")
_GENERIC_ID_FIELDS = ("problem_id", "unique_id", "id", "task_id", "question_id", "key", "idx")
_OWN_ID_FIELD = {"mmlu_pro": "question_id", "ifeval": "key", "cluewsc": "idx"}
_ROW_INDEXED = frozenset({"drop", "cnmo2024", "simpleqa", "frames", "mmlu_redux"})
_TEXT_FIELDS = ("question", "problem", "Prompt", "prompt")


def sample_files(path: Path) -> list[Path]:
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("samples_*.jsonl") if p.is_file())
        if not files:
            raise UserError(f"{path}: no lm-eval samples_*.jsonl files in this directory (run lm_eval with "
                            "--log_samples --output_path DIR)")
        return files
    return [path]


def lm_eval_task_name(path: Path) -> str | None:
    m = _FILE_RE.match(path.name)
    return m.group("task") if m else None


def target_letter(target: Any) -> str | None:
    """lm-eval targets come as "C", "(C)", " C", or an index 0-3 (as int or string)."""
    if isinstance(target, bool):
        return None
    if isinstance(target, int):
        return LETTERS[target] if 0 <= target < 4 else None
    t = str(target).strip().strip("()").strip()
    if t in tuple(LETTERS):
        return t
    if t in ("0", "1", "2", "3"):
        return LETTERS[int(t)]
    return None


def _records(path: Path) -> Iterator[tuple[int, dict]]:
    for lineno, obj in json_lines(path, "a JSON object (an lm-eval logged sample)"):
        for field in ("doc_id", "doc", "resps"):
            if field not in obj:
                raise UserError(f"{path}:{lineno}: missing field {field!r}; is this an lm-eval --log_samples file?")
        if not isinstance(obj["doc"], dict):
            raise UserError(f"{path}:{lineno}: field 'doc' must be an object")
        yield lineno, obj


def _completions(obj: dict, where: str) -> list[str]:
    resps = obj["resps"]
    out: list[str] = []
    if isinstance(resps, list):
        for per_request in resps:
            items = per_request if isinstance(per_request, list) else [per_request]
            for r in items:
                if not isinstance(r, str):
                    raise UserError(f"{where}: 'resps' holds {type(r).__name__} values, not generated text: only "
                                    "generative (generate_until) lm-eval tasks can be rescored")
                out.append(r)
    if not out:
        raise UserError(f"{where}: 'resps' is empty")
    return out


def _external(obj: dict, n: int) -> list[dict[str, Any]]:
    """lm-eval's own per-doc score, kept beside our verdict for comparison."""
    ext = {"lm_eval_filter": obj.get("filter")}
    for m in obj.get("metrics") or []:
        if isinstance(obj.get(m), (int, float, bool)):
            ext[f"lm_eval_{m}"] = obj[m]
    return [dict(ext) for _ in range(n)]


# --- MMLU ---------------------------------------------------------------------------------------------------------
def _norm(text: str) -> str:
    # Copies of MMLU differ in incidental whitespace; the words are what identify a question.
    return " ".join(text.split())


class _MMLUIndex:
    def __init__(self, problems):
        self.by_id = {p.id: p for p in problems}
        self.by_text: dict[tuple[str, str], list[str]] = {}
        for p in problems:
            self.by_text.setdefault((p.meta["subject"], _norm(p.question)), []).append(p.id)


def _mmlu_subjects() -> list[str]:
    """Subject names from the task module (the data may be absent; the names are needed to read task names)."""
    from tasks.mmlu import SUBJECTS  # noqa: PLC0415

    return sorted(SUBJECTS, key=len, reverse=True)


def _mmlu_subject(doc: dict, lm_task: str | None, subjects: list[str], where: str) -> str:
    s = doc.get("subject")
    if isinstance(s, str) and s in subjects:
        return s
    if lm_task:
        for cand in subjects:  # longest first: "high_school_physics" before a shorter name it contains
            if re.search(rf"(^|_){re.escape(cand)}(_|$)", lm_task):
                return cand
    raise UserError(f"{where}: cannot tell the MMLU subject: the doc has no 'subject' field and the lm-eval task name "
                    f"{lm_task!r} names no MMLU subject")


def _mmlu_problem(obj: dict, lm_task: str | None, index: _MMLUIndex | None, subjects: list[str], where: str,
                  lineno: int, comps: list[str]) -> ImportedProblem:
    doc = obj["doc"]
    subject = _mmlu_subject(doc, lm_task, subjects, where)
    try:
        row = int(obj["doc_id"])
    except (TypeError, ValueError):
        raise UserError(f"{where}: 'doc_id' must be an integer row index") from None
    pid = f"{subject}/{row}"
    letter = target_letter(obj.get("target"))
    if index is None:
        if letter is None:
            raise UserError(f"{where}: 'target' is not a letter A-D or an index 0-3, and no MMLU data to take gold from")
        return ImportedProblem(pid, comps, lineno, gold=letter, meta={"subject": subject}, external=_external(obj, len(comps)))
    question = doc.get("question")
    if isinstance(question, str):
        p = index.by_id.get(pid)
        if p is None or _norm(p.question) != _norm(question):
            ids = index.by_text.get((subject, _norm(question)), [])
            if len(ids) != 1:
                raise UserError(f"{where}: doc_id {row} of subject {subject!r} matches no unique question of our "
                                f"{subject} test data")
            pid = ids[0]
    elif pid not in index.by_id:
        raise UserError(f"{where}: {pid!r} is not an MMLU test question (subject {subject!r} has no row {row})")
    gold = index.by_id[pid].gold
    if letter is not None and letter != gold:
        raise UserError(f"{where}: lm-eval's target for {pid!r} differs from our gold letter: the doc was mapped to the "
                        "wrong row, or the data differ")
    return ImportedProblem(pid, comps, lineno, external=_external(obj, len(comps)))


# --- GPQA ---------------------------------------------------------------------------------------------------------
def _lm_eval_gpqa_text(text: Any) -> str:
    """lm-eval's gpqa utils.preprocess, so its shuffled choices can be matched to the original columns."""
    if text is None:
        return " "
    t = str(text).strip().replace(" [title]", ". ")
    return t.replace("  ", " ")


def _gpqa_perm(doc: dict) -> list[int] | None:
    from tasks.gpqa import OPTION_COLUMNS  # noqa: PLC0415

    choices = doc.get("choices")
    if not (isinstance(choices, list) and len(choices) == 4):
        choices = [doc.get(f"choice{i}") for i in range(1, 5)]
    if any(not isinstance(c, str) for c in choices) or any(c not in doc for c in OPTION_COLUMNS):
        return None
    originals = [_lm_eval_gpqa_text(doc[c]) for c in OPTION_COLUMNS]
    perm = []
    for c in choices:
        hits = [j for j, o in enumerate(originals) if o == c.strip() or o == _lm_eval_gpqa_text(c)]
        if len(hits) != 1:
            return None  # duplicate or unmatched option text: the order cannot be recovered
        perm.append(hits[0])
    return perm if sorted(perm) == [0, 1, 2, 3] else None


def _gpqa_problem(obj: dict, where: str, lineno: int, comps: list[str]) -> ImportedProblem:
    from tasks.gpqa import CORRECT_INDEX  # noqa: PLC0415

    doc = obj["doc"]
    rid = doc.get("Record ID")
    if not isinstance(rid, str) or not rid.strip():
        raise UserError(f"{where}: doc has no 'Record ID' (needed to identify the GPQA question)")
    letter = target_letter(obj.get("target"))
    if letter is None:
        raise UserError(f"{where}: 'target' is not a letter A-D")
    perm = _gpqa_perm(doc)
    if perm is not None and LETTERS[perm.index(CORRECT_INDEX)] != letter:
        raise UserError(f"{where}: target letter and the recovered option order disagree")
    meta = {"gold_letter": letter, "perm": perm, "source": "lm-eval"}
    if perm is None:
        del meta["perm"]
    domain = doc.get("High-level domain")
    return ImportedProblem(rid.strip(), comps, lineno, gold=CORRECT_INDEX, prompt_meta=[dict(meta) for _ in comps],
                           meta={"domain": domain.strip()} if isinstance(domain, str) and domain.strip() else {},
                           external=_external(obj, len(comps)))


# --- tasks identified by their own ids or by question text ------------------------------------------------------
def _own_id_problem(task_name: str, obj: dict, lm_task: str | None, where: str, lineno: int,
                    comps: list[str], names: list[str]) -> ImportedProblem:
    doc = obj["doc"]
    if task_name == "ceval":
        rid = doc.get("id")
        if not isinstance(rid, (str, int)) or isinstance(rid, bool):
            raise UserError(f"{where}: doc has no 'id' (needed to identify the C-Eval question)")
        subject = doc.get("subject") if doc.get("subject") in names else next(
            (n for n in names if lm_task and re.search(rf"(^|[_-]){re.escape(n)}$", lm_task)), None)
        if subject is None:
            raise UserError(f"{where}: cannot tell the C-Eval subject: the doc has no 'subject' field and the lm-eval "
                            f"task name {lm_task!r} does not end with a C-Eval subject")
        pid = f"{subject}/{str(rid).strip()}"
    else:
        field = _OWN_ID_FIELD[task_name]
        value = doc.get(field)
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise UserError(f"{where}: doc has no {field!r} (the {task_name} problem id)")
        pid = str(value).strip()
    return ImportedProblem(pid, comps, lineno, external=_external(obj, len(comps)))


class _TextIndex:
    """Our problems by normalised question text, for lm-eval copies whose row order differs from ours."""

    def __init__(self, problems):
        self.by_text: dict[str, list] = {}
        for p in problems:
            self.by_text.setdefault(_norm(p.question), []).append(p)

    def find(self, doc: dict) -> list:
        texts = [doc[f] for f in _TEXT_FIELDS if isinstance(doc.get(f), str)]
        if isinstance(doc.get("passage"), str) and isinstance(doc.get("question"), str):
            # simple-evals' DROP context, which is our question text
            texts.insert(0, f"Passage: {doc['passage']}\nQuestion: {doc['question']}\nAnswer:")
        for t in texts:
            hits = self.by_text.get(_norm(t), [])
            if len(hits) > 1 and isinstance(doc.get("choices"), list):
                opts = tuple(_norm(str(c)) for c in doc["choices"])
                hits = [p for p in hits if tuple(_norm(o) for o in getattr(p, "options", ())) == opts] or hits
            if len(hits) > 1 and isinstance(doc.get("subject"), str):
                hits = [p for p in hits if p.meta.get("subject") == doc["subject"]] or hits
            if hits:
                return hits
        return []


def _text_problem(task_name: str, obj: dict, index: _TextIndex, where: str, lineno: int,
                  comps: list[str]) -> ImportedProblem:
    hits = index.find(obj["doc"])
    if not hits:
        raise UserError(f"{where}: doc_id {obj['doc_id']!r} matches no {task_name} question of our data by its text "
                        f"(looked at the doc's {', '.join(_TEXT_FIELDS)} and passage fields)")
    if len(hits) > 1:
        raise UserError(f"{where}: doc_id {obj['doc_id']!r} matches {len(hits)} {task_name} questions of our data "
                        f"(ids {', '.join(p.id for p in hits[:5])}): cannot tell which")
    return ImportedProblem(hits[0].id, comps, lineno, external=_external(obj, len(comps)))


# --- entry point --------------------------------------------------------------------------------------------------
def read(path: Path, task, data_dir=None) -> Iterator[ImportedProblem]:
    files = sample_files(Path(path))
    index = None
    subjects: list[str] = []
    if task.name == "mmlu":
        subjects = _mmlu_subjects()
        try:
            index = _MMLUIndex(task.problems(data_dir))
        except UserError:
            index = None  # no local data: targets give the gold, rows are not cross-checked
    text_index = None
    if task.name == "ceval":
        # longest first: a subject name that ends another's (e.g. "..._physics") must not win
        subjects = sorted({p.meta["subject"] for p in task.problems(data_dir)}, key=len, reverse=True)
    if task.name in _ROW_INDEXED:
        try:
            text_index = _TextIndex(task.problems(data_dir))
        except UserError as e:
            raise UserError(f"{path}: importing lm-eval {task.name} samples needs our {task.name} data to find each "
                            f"doc by its text ({e})") from None
    for f in files:
        lm_task = lm_eval_task_name(f)
        seen: set = set()
        for lineno, obj in _records(f):
            key = json.dumps(obj["doc_id"])
            if key in seen:  # the same doc again under the next filter
                continue
            seen.add(key)
            where = f"{f}:{lineno}"
            comps = _completions(obj, where)
            if task.name == "mmlu":
                yield _mmlu_problem(obj, lm_task, index, subjects, where, lineno, comps)
            elif task.name == "gpqa_diamond":
                yield _gpqa_problem(obj, where, lineno, comps)
            elif task.name in _OWN_ID_FIELD or task.name == "ceval":
                yield _own_id_problem(task.name, obj, lm_task, where, lineno, comps, subjects)
            elif text_index is not None:
                yield _text_problem(task.name, obj, text_index, where, lineno, comps)
            else:
                doc = obj["doc"]
                field = next((k for k in _GENERIC_ID_FIELDS if isinstance(doc.get(k), (str, int))), None)
                if field is None:
                    raise UserError(f"{where}: cannot map this doc to a {task.name} problem: it has none of the fields "
                                    f"{', '.join(_GENERIC_ID_FIELDS)}")
                yield ImportedProblem(str(doc[field]), comps, lineno, external=_external(obj, len(comps)))
