"""`livecodebench`: LiveCodeBench code generation, problems of 2024-08-01 .. 2025-01-31 (the R1 paper's window).

Data, two ways:
- ``livecodebench/lcb_2408_2501.jsonl`` (in shared/data): the window's 279 problems (175 AtCoder, 104 LeetCode) with
  statements and starter code, but NOT LiveCodeBench's hidden tests (they are only on Hugging Face). Tests are the
  public examples of each statement: AtCoder "Sample Input k / Sample Output k" blocks (stdin/stdout), LeetCode
  "Input: a = ..., b = ... / Output: ..." examples (called through the starter code's ``Solution`` method).
  pass@1 on examples overestimates real LiveCodeBench pass@1; results.json says ``hidden_tests_absent: true``.
- LiveCodeBench's own release files (``test.jsonl``, ``test2.jsonl``, ... of ``livecodebench/code_generation_lite``)
  in the data dir or its ``livecodebench/`` folder: then every public and private test is used, and the problems are
  the release rows in the date window. Private tests are stored either as a JSON string or as
  base64(zlib(pickle(JSON string))).

Prompt: LiveCodeBench's official code-generation prompt for reasoning models (all in the user turn), as used for
DeepSeek-R1 and QwQ; the QwQ file's stored prompt is this exact text for all 279 problems.

Problem id = LiveCodeBench's ``question_id`` (``abc365_b``, ``3517``). Date window: ``configure(since, until)``
(CLI ``--since/--until``, ``YYYY-MM-DD`` or ``YYYY-MM``), inclusive, on ``contest_date``.
"""
from __future__ import annotations

import base64
import calendar
import io
import json
import pickle
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import data as hdata
from harness.data import HubSource
from harness.errors import DataMissing, UserError
from harness.task import Problem, Prompt, ScoreItem, Task
from harness.verifiers import code
from harness.verifiers.base import Verdict

RELPATH = "livecodebench/lcb_2408_2501.jsonl"
RELEASE_GLOB = "test*.jsonl"
DEFAULT_SINCE = "2024-08-01"
DEFAULT_UNTIL = "2025-01-31"
TIME_LIMIT_S = 6.0  # LiveCodeBench's per-test timeout
MEMORY_MB = 2048  # LiveCodeBench sets none; this only stops runaway programs

PROMPT_HEADER = ("You will be given a question (problem specification) and will generate a correct Python program "
                 "that matches the specification and passes all tests.\n\n")
FORMAT_WITH_STARTER = ("You will use the following starter code to write the solution to the problem and enclose "
                       "your code within delimiters.")
FORMAT_WITHOUT_STARTER = ("Read the inputs from stdin solve the problem and write the answer to stdout (do not "
                          "directly test on the sample inputs). Enclose your code within delimiters as follows. "
                          "Ensure that when the python program runs, it reads the inputs, runs the algorithm and "
                          "writes output to STDOUT.")


def lcb_prompt(question_content: str, starter_code: str = "") -> str:
    p = PROMPT_HEADER + f"Question: {question_content}\n\n"
    if starter_code:
        return p + f"{FORMAT_WITH_STARTER}\n```python\n{starter_code}\n```\n\n"
    return p + f"{FORMAT_WITHOUT_STARTER}\n```python\n# YOUR CODE HERE\n```\n\n"


@dataclass
class CodeProblem(Problem):
    prompt_text: str = ""
    tests: list[dict] = field(default_factory=list)
    mode: str = "stdin"  # or "function"
    func_name: str | None = None


# --- public examples from statements ----------------------------------------------------------------------------
_ATCODER_SAMPLE = re.compile(r"Sample Input (\d+)\n\n(.*?)\n\nSample Output \1\n\n(.*?)(?=\n\n|\n?\Z)", re.S)


def atcoder_samples(content: str) -> list[dict]:
    """The statement's sample tests (inputs and outputs end with one newline; an empty output is a blank line)."""
    text = content.replace("\r\n", "\n").replace("\r", "\n")
    return [{"input": m.group(2).strip("\n") + "\n", "output": m.group(3).strip("\n") + "\n"}
            for m in _ATCODER_SAMPLE.finditer(text)]


_SIGNATURE = re.compile(r"def (\w+)\(self,?\s*(.*?)\)\s*(?:->.*?)?:", re.S)


def starter_signature(starter_code: str) -> tuple[str, list[str]] | None:
    m = _SIGNATURE.search(starter_code or "")
    if not m:
        return None
    params = [p.split(":")[0].split("=")[0].strip() for p in re.split(r",\s*(?![^\[]*\])", m.group(2)) if p.strip()]
    return m.group(1), params


def leetcode_examples(content: str, starter_code: str) -> list[dict]:
    """'Input: n = 5, queries = [[2,4]]' / 'Output: [3]' examples as LiveCodeBench functional tests: the input is one
    JSON value per line (the arguments in order), the output is JSON."""
    sig = starter_signature(starter_code)
    if sig is None:
        return []
    _, params = sig
    pattern = re.compile(r"^\s*" + r",\s*".join(re.escape(p) + r"\s*=\s*(.*?)" for p in params) + r"\s*$", re.S)
    tests = []
    for inp, outp in re.findall(r"Input:\s*(.*?)\nOutput:\s*(.*?)\n", content.replace("\r\n", "\n") + "\n", re.S):
        m = pattern.match(inp.strip())
        if not m:
            return []  # an example we cannot read: better no tests (the problem is reported) than partial ones
        try:
            args = [json.loads(v) for v in m.groups()]
            out = json.loads(outp.strip())
        except ValueError:
            return []
        tests.append({"input": "\n".join(json.dumps(a) for a in args), "output": json.dumps(out)})
    return tests


# --- LiveCodeBench release files ---------------------------------------------------------------------------------
class _StrOnly(pickle.Unpickler):
    """The release files pickle a plain str; refusing every class keeps a crafted file from running code."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name} from a test file")


def decode_tests(raw: Any) -> list[dict]:
    """public_test_cases / private_test_cases: a list, a JSON string, or base64(zlib(pickle(JSON string)))."""
    if isinstance(raw, list):
        return raw
    if not isinstance(raw, str):
        raise ValueError(f"unexpected test field type {type(raw).__name__}")
    if not raw.strip():
        return []
    try:
        return json.loads(raw)
    except ValueError:
        pass
    blob = _StrOnly(io.BytesIO(zlib.decompress(base64.b64decode(raw)))).load()
    return json.loads(blob) if isinstance(blob, (str, bytes)) else blob


def release_files(data_dir=None) -> list[Path]:
    base = hdata.data_dir(data_dir)
    if base is None:
        return []
    for d in (base / "livecodebench", base):
        files = sorted(d.glob(RELEASE_GLOB), key=lambda p: (len(p.name), p.name))  # test, test2, ..., test10
        if files:
            return files
    return []


def problem_from_release_row(row: dict, where: str) -> CodeProblem:
    try:
        public = decode_tests(row.get("public_test_cases") or "[]")
        private = decode_tests(row.get("private_test_cases") or "[]")
    except Exception as e:  # zlib/base64/pickle/json each raise their own
        raise UserError(f"{where}: question {row.get('question_id')!r}: undecodable tests ({type(e).__name__}: {e})") from e
    meta = row.get("metadata") or {}
    if isinstance(meta, str):
        meta = json.loads(meta or "{}")
    tests = [{"input": t["input"], "output": t["output"]} for t in public + private]
    functional = any(t.get("testtype") == "functional" for t in public + private)
    func = meta.get("func_name") or (starter_signature(row.get("starter_code") or "") or (None,))[0]
    return CodeProblem(
        id=str(row["question_id"]),
        gold=tests,
        question=row.get("question_content", ""),
        meta={"platform": row.get("platform"), "difficulty": row.get("difficulty"),
              "contest_date": str(row.get("contest_date", ""))[:10], "n_public_tests": len(public),
              "n_private_tests": len(private)},
        prompt_text=lcb_prompt(row.get("question_content", ""), row.get("starter_code") or ""),
        tests=tests,
        mode="function" if functional else "stdin",
        func_name=func if functional else None,
    )


def _parse_date(value: str, end: bool) -> str:
    v = str(value).strip()
    if re.fullmatch(r"\d{4}-\d{2}", v):
        y, m = map(int, v.split("-"))
        if not 1 <= m <= 12:
            raise UserError(f"bad month in date {value!r}")
        return f"{v}-{calendar.monthrange(y, m)[1]:02d}" if end else f"{v}-01"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
        return v
    raise UserError(f"dates are YYYY-MM-DD or YYYY-MM, got {value!r}")


class LiveCodeBench(Task):
    name = "livecodebench"
    default_k = 16  # open-r1 / lighteval reproduction setting
    hub = HubSource("livecodebench/code_generation_lite", revision="release_v5", split="test")
    files = (RELPATH,)
    breakdowns = ("difficulty", "platform")

    def __init__(self):
        super().__init__()
        self.since, self.until = DEFAULT_SINCE, DEFAULT_UNTIL
        self.hidden_tests = False

    def configure(self, since: str | None = None, until: str | None = None, **_ignored) -> None:
        self.since = _parse_date(since, end=False) if since else DEFAULT_SINCE
        self.until = _parse_date(until, end=True) if until else DEFAULT_UNTIL
        if self.since > self.until:
            raise UserError(f"--since {self.since} is after --until {self.until}")

    def _in_window(self, date: str) -> bool:
        return self.since <= str(date)[:10] <= self.until

    def load_problems(self, data_dir=None) -> list[Problem]:
        files = release_files(data_dir)
        if files:
            return self._load_release(files)
        try:
            path = hdata.resolve(RELPATH, self.hub, data_dir)
        except DataMissing as e:
            raise DataMissing(f"{e}; or put LiveCodeBench release files ({RELEASE_GLOB}) in the data dir") from e
        self.hidden_tests = False
        self.data_hashes = {RELPATH: hdata.file_sha256(path)}
        out = []
        for lineno, row in enumerate(hdata.read_jsonl(path), 1):
            try:
                if not self._in_window(row["contest_date"]):
                    continue
                starter = row.get("starter_code") or ""
                if row["platform"] == "leetcode":
                    tests = leetcode_examples(row["question_content"], starter)
                    sig = starter_signature(starter)
                    mode, func = "function", sig[0] if sig else None
                else:
                    tests, mode, func = atcoder_samples(row["question_content"]), "stdin", None
                out.append(CodeProblem(
                    id=str(row["question_id"]), gold=tests, question=row["question_content"],
                    meta={"platform": row["platform"], "difficulty": row["difficulty"],
                          "contest_date": row["contest_date"][:10], "n_public_tests": len(tests),
                          "n_private_tests": 0},
                    prompt_text=lcb_prompt(row["question_content"], starter),
                    tests=tests, mode=mode, func_name=func,
                ))
            except KeyError as e:
                raise UserError(f"{path}:{lineno}: missing field {e.args[0]!r}") from e
        return out

    def _load_release(self, files: list[Path]) -> list[Problem]:
        self.hidden_tests = True
        self.data_hashes = {str(p): hdata.file_sha256(p) for p in files}
        seen: dict[str, CodeProblem] = {}
        for path in files:
            for lineno, row in enumerate(hdata.read_jsonl(path), 1):
                if "question_id" not in row or "contest_date" not in row:
                    raise UserError(f"{path}:{lineno}: not a LiveCodeBench code_generation_lite row")
                if self._in_window(row["contest_date"]):
                    seen[str(row["question_id"])] = problem_from_release_row(row, f"{path}:{lineno}")
        return list(seen.values())

    def prompt(self, problem: Problem, seed: int) -> Prompt:
        return Prompt(messages=[{"role": "user", "content": problem.prompt_text}])

    def _job(self, item: ScoreItem) -> code.CodeJob:
        p = item.problem
        return code.CodeJob(item.completion, p.tests, item.finish_reason, mode=p.mode, func_name=p.func_name,
                            time_limit=TIME_LIMIT_S, memory_mb=MEMORY_MB, prelude=code.LCB_PRELUDE,
                            preload=code.LCB_PRELOAD)

    def score(self, item: ScoreItem) -> Verdict:
        return code.score_many([self._job(item)])[0]

    def score_many(self, items: list[ScoreItem]) -> list[Verdict]:
        return code.score_many([self._job(it) for it in items])

    def extra_results(self, problems: list[Problem], records: list[dict]) -> dict[str, Any]:
        return {
            "hidden_tests_absent": not self.hidden_tests,
            "tests_source": ("LiveCodeBench release files: public + private tests" if self.hidden_tests else
                             "public examples parsed from the statements (LiveCodeBench's hidden tests absent)"),
            "date_window": [self.since, self.until],
            "problems_without_tests": sorted(p.id for p in problems if not getattr(p, "tests", None)),
        }


TASKS = [LiveCodeBench()]
