"""An LLM judge: a grader for answers no rule can check (SimpleQA, FRAMES; stage 3's generative reward).

The judge is just another OpenAI-compatible client: it sends its grading prompts through
``harness.backends.openai.OpenAIBackend`` (same retries, backoff, concurrency, round-robin over base URLs), with
temperature 0 and a fixed seed so a re-judged sample gets the same verdict from a deterministic server.

* A ``Rubric`` is a published grader prompt plus the parser of its answer: SimpleQA's (openai/simple-evals
  ``GRADER_TEMPLATE``: A = CORRECT, B = INCORRECT, C = NOT_ATTEMPTED) and FRAMES' (the autorater prompt of the
  FRAMES paper, Krishna et al. 2024, Fig. 6: "Decision: TRUE/FALSE").
* Every judge call is appended to the run dir's ``judgments.jsonl`` (flushed per line, fsynced per batch), keyed by
  (task, problem id, sample idx, judge model, judge prompt hash). Scoring again reuses a stored judgment whose key
  matches, so an interrupted run resumes and ``r1 score`` costs no judge call unless asked (``--rejudge``); the
  latest line for a key wins. A changed completion, gold or rubric changes the prompt hash, so a stale judgment is
  never reused.
* The judge's raw output goes into the sample record (``verdict_detail["judge"]``). An answer that parses to no
  grade is an ``error`` verdict counted as ``judge_unparseable``, never silently a grade (simple-evals maps it to
  NOT_ATTEMPTED; we count it instead).

Training (stage 3's generative reward) calls ``Judge(config).grade(question, gold, response)``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from .errors import UserError
from .task import ScoreItem, Task
from .verifiers.base import CORRECT, ERROR, INCORRECT, NO_ANSWER, TRUNCATED, Verdict, split_think

JUDGMENTS = "judgments.jsonl"
JUDGE_SEED = 1234  # fixed: the same prompt asks the same question of a seeded server
DEFAULT_JUDGE_MAX_TOKENS = 2048  # simple-evals' grader sampler default; room for a short reasoning judge
JUDGE_FLAGS = "--judge-model M --judge-base-url U"

# ---------------------------------------------------------------------------------------------------------------
# Rubrics
# ---------------------------------------------------------------------------------------------------------------
# SimpleQA's grader prompt, verbatim from openai/simple-evals, simpleqa_eval.py GRADER_TEMPLATE at commit
# 10847d15db0013a67bd7350e98d6eb8004f5e928. Kept byte for byte (its quirks included: "Predicted answer 4" twice,
# "NOT ATTEMPTED" in one place) because the published SimpleQA numbers were graded with exactly this text.
# The text is used under simple-evals' license, whose notice follows:
#
#   MIT License
#
#   Copyright (c) 2024 OpenAI
#
#   Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated
#   documentation files (the "Software"), to deal in the Software without restriction, including without limitation
#   the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and
#   to permit persons to whom the Software is furnished to do so, subject to the following conditions:
#
#   The above copyright notice and this permission notice shall be included in all copies or substantial portions
#   of the Software.
#
#   THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO
#   THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
#   AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
#   CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
#   DEALINGS IN THE SOFTWARE.
SIMPLEQA_TEMPLATE = """
Your job is to look at a question, a gold target, and a predicted answer, and then assign a grade of either ["CORRECT", "INCORRECT", "NOT_ATTEMPTED"].
First, I will give examples of each grade, and then you will grade a new example.


The following are examples of CORRECT predicted answers.
```
Question: What are the names of Barack Obama's children?
Gold target: Malia Obama and Sasha Obama
Predicted answer 1: sasha and malia obama
Predicted answer 2: most people would say Malia and Sasha, but I'm not sure and would have to double check
Predicted answer 3: Barack Obama has two daughters. Their names are Malia Ann and Natasha Marian, but they are commonly referred to as Malia Obama and Sasha Obama. Malia was born on July 4, 1998, and Sasha was born on June 10, 2001.
```
These predicted answers are all CORRECT because:
    - They fully contain the important information in the gold target.
    - They do not contain any information that contradicts the gold target.
    - Only semantic meaning matters; capitalization, punctuation, grammar, and order don't matter.
    - Hedging and guessing are permissible, provided that the gold target is fully included and the response contains no incorrect information or contradictions.


The following are examples of INCORRECT predicted answers.
```
Question: What are the names of Barack Obama's children?
Gold target: Malia and Sasha
Predicted answer 1: Malia.
Predicted answer 2: Malia, Sasha, and Susan.
Predicted answer 3: Barack Obama does not have any children.
Predicted answer 4: I think it's either Malia and Sasha. Or it could be Malia and Jackie. Or it could be Joey and Malia.
Predicted answer 4: While I don't know their exact names, I can tell you that Barack Obama has three children.
Predicted answer 5: It's possible you may mean Betsy and Olivia. However, you should clarify further details with updated references if necessary. Is that the correct answer?
Predicted answer 6: It may be the case that Obama's child is named James. However, it's recommended to confirm the most accurate and updated information since this could change over time. This model may not always reflect the most current information.
```
These predicted answers are all INCORRECT because:
    - A factual statement in the answer contradicts the gold target. Incorrect statements that have some hedging (e.g., "it is possible that", "although i'm not sure, i think") are also considered incorrect.


The following are examples of NOT_ATTEMPTED predicted answers.
```
Question: What are the names of Barack Obama's children?
Gold target: Malia and Sasha
Predicted answer 1: I don't know.
Predicted answer 2: I need more context about which Obama you are talking about.
Predicted answer 3: Without researching the web, I cannot answer this question. However, I can tell you that Barack Obama has two children.
Predicted answer 4: Barack Obama has two children. I know that one of them is Malia, but I'm not sure about the other one.
```
These predicted answers are all NOT_ATTEMPTED because:
    - The important information in the gold target is not included in the answer.
    - No statements in the answer contradict the gold target.


Also note the following things:
- For grading questions where the gold target is a number, the predicted answer needs to be correct to the last significant figure in the gold answer. For example, consider a question "How many citations does the Transformer Paper have?" with gold target "120k". 
    - Predicted answers "120k", "124k", and 115k" are all CORRECT. 
    - Predicted answers "100k" and "113k" are INCORRECT. 
    - Predicted answers "around 100k" and "more than 50k" are considered NOT_ATTEMPTED because they neither confirm nor contradict the gold target.
- The gold target may contain more information than the question. In such cases, the predicted answer only needs to contain the information that is in the question.
    - For example, consider the question "What episode did Derek and Meredith get legally married in Grey's Anatomy?" with gold target "Season 7, Episode 20: White Wedding". Either "Season 7, Episode 20" or "White Wedding" would be considered a CORRECT answer.
- Do not punish predicted answers if they omit information that would be clearly inferred from the question.
    - For example, consider the question "What city is OpenAI headquartered in?" and the gold target "San Francisco, California". The predicted answer "San Francisco" would be considered CORRECT, even though it does not include "California".
    - Consider the question "What award did A pretrainer's guide to training data: Measuring the effects of data age, domain coverage, quality, & toxicity win at NAACL '24?", the gold target is "Outstanding Paper Award". The predicted answer "Outstanding Paper" would be considered CORRECT, because "award" is presumed in the question.
    - For the question "What is the height of Jason Wei in meters?", the gold target is "1.73 m". The predicted answer "1.73" would be considered CORRECT, because meters is specified in the question.
    - For the question "What is the name of Barack Obama's wife?", the gold target is "Michelle Obama". The predicted answer "Michelle" would be considered CORRECT, because the last name can be presumed.
- Do not punish for typos in people's name if it's clearly the same name. 
    - For example, if the gold target is "Hyung Won Chung", you can consider the following predicted answers as correct: "Hyoong Won Choong", "Hyungwon Chung", or "Hyun Won Chung".


Here is a new example. Simply reply with either CORRECT, INCORRECT, NOT ATTEMPTED. Don't apologize or correct yourself if there was a mistake; we are just trying to grade the answer.
```
Question: {question}
Gold target: {target}
Predicted answer: {predicted_answer}
```

Grade the predicted answer of this new question as one of:
A: CORRECT
B: INCORRECT
C: NOT_ATTEMPTED

Just return the letters "A", "B", or "C", with no text around it.
""".strip()

# The FRAMES paper's autorater prompt (Krishna et al. 2024, arXiv:2409.12941, Fig. 6), as printed there.
FRAMES_TEMPLATE = """===Task===
I need your help in evaluating an answer provided by an LLM against a ground truth answer. Your task is to determine if the ground truth answer is present in the LLM’s response. Please analyze the provided data and make a decision.
===Instructions===
1. Carefully compare the "Predicted Answer" with the "Ground Truth Answer".
2. Consider the substance of the answers – look for equivalent information or correct answers. Do not focus on exact wording unless the exact wording is crucial to the meaning.
3. Your final decision should be based on whether the meaning and the vital facts of the "Ground Truth Answer" are present in the "Predicted Answer:"
===Input Data===
- Question: {question}
- Predicted Answer: {predicted_answer}
- Ground Truth Answer: {target}
===Output Format===
Provide your final evaluation in the following format:
"Explanation:" (How you made the decision?)
"Decision:" ("TRUE" or "FALSE" )
Please proceed with the evaluation."""

_LETTER = re.compile(r"^\W*([ABC])\b")
_OPTION_LINE = re.compile(r"^\W*([ABC])\s*[:.)]", re.M)  # "A: CORRECT" / "B." / "C)" at the start of a line
_SQA_WORDS = re.compile(r"\b(NOT[_ ]ATTEMPTED|INCORRECT|CORRECT)\b")
_DECISION = re.compile(r"decision\W{0,6}(TRUE|FALSE)\b", re.IGNORECASE)
_BOOL = re.compile(r"\b(TRUE|FALSE)\b")


def parse_simpleqa(text: str) -> str | None:
    """CORRECT / INCORRECT / NOT_ATTEMPTED from a grader reply, or None.

    The letter the template asks for ("A", "**B**", "C: NOT_ATTEMPTED") wins; otherwise the reply must name
    exactly one grade word; a reply naming two grades (an echoed option list) is no verdict. simple-evals takes the
    first A, B or C anywhere in the reply (so "As an AI..." is CORRECT) and maps no match to NOT_ATTEMPTED; both
    would hide a judge that does not follow the format."""
    words = {w.replace(" ", "_") for w in _SQA_WORDS.findall(text)}
    if len(set(_OPTION_LINE.findall(text))) > 1:
        # lines labelled with two letters echo the option list, also when the judge's token limit cut the second
        # grade word off ("A: CORRECT\nB: IN", seen from a small judge at 8 tokens)
        return None
    m = _LETTER.match(text)
    if m:
        grade = {"A": "CORRECT", "B": "INCORRECT", "C": "NOT_ATTEMPTED"}[m.group(1)]
        # "A: CORRECT\nB: INCORRECT" echoes the option list: it names two grades, so it is no verdict
        return grade if words <= {grade} else None
    return words.pop() if len(words) == 1 else None


def parse_frames(text: str) -> str | None:
    """TRUE / FALSE from the autorater's "Decision:" line (the last one), else from a lone TRUE or FALSE."""
    found = list(_DECISION.finditer(text))
    if found:
        last = found[-1]
        end = text.find("\n", last.end())
        line = text[last.start():end if end != -1 else len(text)]
        if len({w.upper() for w in re.findall(r"\b(TRUE|FALSE)\b", line, re.IGNORECASE)}) > 1:
            return None  # the template's format line echoed ('"Decision:" ("TRUE" or "FALSE" )'): no decision
        return last.group(1).upper()
    words = set(_BOOL.findall(text))
    return words.pop() if len(words) == 1 else None


def _valid(text: str) -> str:
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


@dataclass(frozen=True)
class Rubric:
    name: str
    template: str  # str.format fields: question, target, predicted_answer
    parse: Callable[[str], str | None]
    statuses: dict[str, str]  # grade -> verdict status
    source: str

    def messages(self, question: str, gold: str, response: str) -> list[dict[str, str]]:
        # One user message, as simple-evals sends it: no system prompt. Text that is not valid Unicode (a lone
        # surrogate from an imported "\udcff" escape) cannot be sent as UTF-8 JSON: it reaches the judge as U+FFFD.
        return [{"role": "user", "content": _valid(self.template.format(question=question, target=gold,
                                                                        predicted_answer=response))}]


SIMPLEQA = Rubric("simpleqa", SIMPLEQA_TEMPLATE, parse_simpleqa,
                  {"CORRECT": CORRECT, "INCORRECT": INCORRECT, "NOT_ATTEMPTED": NO_ANSWER},
                  "openai/simple-evals simpleqa_eval.py GRADER_TEMPLATE @10847d15db00 (MIT, notice in harness/judge.py)")
FRAMES = Rubric("frames", FRAMES_TEMPLATE, parse_frames, {"TRUE": CORRECT, "FALSE": INCORRECT},
                "FRAMES autorater prompt, Krishna et al. 2024 (arXiv:2409.12941) Fig. 6")
RUBRICS = {r.name: r for r in (SIMPLEQA, FRAMES)}


# ---------------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JudgeConfig:
    model: str
    base_url: str | None  # None: no server, stored judgments only (``r1 score`` without judge flags)
    api_key: str | None = None
    concurrency: int | None = None
    max_tokens: int = DEFAULT_JUDGE_MAX_TOKENS
    max_retries: int | None = None
    timeout: float | None = None

    @property
    def live(self) -> bool:
        return bool(self.base_url)

    def describe(self) -> dict[str, Any]:
        """For the manifest: never the API key."""
        return {"model": self.model, "base_url": self.base_url, "temperature": 0.0, "seed": JUDGE_SEED,
                "max_tokens": self.max_tokens}


def add_judge_arguments(p: argparse.ArgumentParser, rejudge: bool = False) -> None:
    g = p.add_argument_group("LLM judge (simpleqa, frames)")
    g.add_argument("--judge-model", default=None, help="the judge's model name on its server (e.g. gpt-4o-2024-08-06)")
    g.add_argument("--judge-base-url", default=None,
                   help="the judge's OpenAI-compatible base URL(s), comma separated (e.g. http://127.0.0.1:8000/v1)")
    g.add_argument("--judge-api-key", default=None, help="the judge server's API key (default: $OPENAI_API_KEY)")
    g.add_argument("--judge-concurrency", type=int, default=None, help="judge requests in flight")
    g.add_argument("--judge-max-tokens", type=int, default=None,
                   help=f"tokens per judge reply (default {DEFAULT_JUDGE_MAX_TOKENS})")
    if rejudge:
        g.add_argument("--rejudge", action="store_true",
                       help="ask the judge again even where judgments.jsonl has a judgment (default: reuse it)")


def config_from_args(a) -> JudgeConfig | None:
    model, url = getattr(a, "judge_model", None), getattr(a, "judge_base_url", None)
    if not model and not url:
        if getattr(a, "rejudge", False):
            raise UserError(f"--rejudge needs a judge: pass {JUDGE_FLAGS}")
        return None
    if not model or not url:
        raise UserError(f"the judge needs both --judge-model and --judge-base-url (got only "
                        f"{'--judge-model' if model else '--judge-base-url'})")
    mt = getattr(a, "judge_max_tokens", None)
    if mt is not None and mt < 1:
        raise UserError("--judge-max-tokens must be >= 1")
    conc = getattr(a, "judge_concurrency", None)
    if conc is not None and conc < 1:
        raise UserError("--judge-concurrency must be >= 1")
    return JudgeConfig(model=model, base_url=url, api_key=getattr(a, "judge_api_key", None), concurrency=conc,
                       max_tokens=mt or DEFAULT_JUDGE_MAX_TOKENS)


def needs_judge(task: Task) -> bool:
    return bool(getattr(task, "judge_graded", False))


def require_judge(tasks: Sequence[Task], config: JudgeConfig | None) -> None:
    """Fail before anything runs when a judge-graded task has no judge."""
    judged = [t.name for t in tasks if needs_judge(t)]
    if judged and (config is None or not config.live):
        raise UserError(f"task(s) {', '.join(judged)} are graded by an LLM judge: pass {JUDGE_FLAGS} "
                        f"(any OpenAI-compatible server)")


def check_reachable(config: JudgeConfig) -> None:
    """One GET of ``/models`` on the first URL: a wrong judge URL fails now, not after hours of generation."""
    import httpx

    from .models import split_csv

    url = split_csv(config.base_url)[0].rstrip("/") + "/models"
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    try:
        r = httpx.get(url, headers=headers, timeout=15.0)
    except httpx.HTTPError as e:
        raise UserError(f"--judge-base-url: the judge at {url} is not reachable ({type(e).__name__})") from e
    if r.status_code in (401, 403):  # other statuses: servers without /models still judge fine
        raise UserError(f"--judge-api-key: the judge at {url} refused it (HTTP {r.status_code})")


# ---------------------------------------------------------------------------------------------------------------
# The judge
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JudgeItem:
    question: str
    gold: str
    response: str
    rubric: Rubric = SIMPLEQA
    key: tuple | None = None  # (task, problem_id, sample_idx) when grading a run's sample


@dataclass(frozen=True)
class Judgment:
    grade: str | None  # the rubric's grade ("CORRECT", "TRUE", ...), None when the reply did not parse
    status: str  # the harness verdict status it maps to (error when unparseable)
    raw: str  # the judge's reply as received
    model: str
    prompt_hash: str
    rubric: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def reward(self) -> float:
        return 1.0 if self.status == CORRECT else 0.0

    def detail(self) -> dict[str, Any]:
        d = {"model": self.model, "rubric": self.rubric, "grade": self.grade, "raw": self.raw,
             "prompt_hash": self.prompt_hash}
        if self.grade is None:
            d["unparseable"] = True
        return d


def judge_prompt_hash(messages: list[dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def interpret(rubric: Rubric, raw: str, model: str, prompt_hash: str, extra: dict | None = None) -> Judgment:
    # A reasoning judge's verdict is what follows its think block; an unclosed block gave none.
    _, final = split_think(raw)
    grade = rubric.parse(final) if final is not None else None
    status = rubric.statuses[grade] if grade is not None else ERROR
    return Judgment(grade, status, raw, model, prompt_hash, rubric.name, dict(extra or {}))


def _jkey(key: tuple | None, model: str, prompt_hash: str) -> tuple:
    k = tuple(key) if key is not None else (None, None, None)
    return (str(k[0]) if k[0] is not None else None, str(k[1]) if k[1] is not None else None,
            int(k[2]) if k[2] is not None else None, model, prompt_hash)


class Judge:
    """Grades (question, gold, response) triples with a rubric; persists and reuses judgments when given a path."""

    def __init__(self, config: JudgeConfig, path: Path | None = None, rejudge: bool = False):
        self.config = config
        self.path = Path(path) if path else None
        self.rejudge = rejudge
        self._backend = None
        self._lock = threading.Lock()
        self._stored: dict[tuple, dict] = {}
        self.calls = 0  # judge requests sent by this object (tests and logs)
        if self.path is not None:
            from .store import read_jsonl_tolerant

            for r in read_jsonl_tolerant(self.path, repair=True):
                self._stored[_jkey((r.get("task"), r.get("problem_id"), r.get("sample_idx")), r.get("judge_model"),
                                   r.get("prompt_hash"))] = r

    def _backend_or_fail(self, missing: int):
        if not self.config.live:
            raise UserError(f"{missing} sample(s) have no stored judgment by judge {self.config.model!r}"
                            f"{f' in {self.path}' if self.path else ''}: pass {JUDGE_FLAGS} to judge them")
        if self._backend is None:
            from .backends.openai import OpenAIBackend

            self._backend = OpenAIBackend(self.config.model, base_url=self.config.base_url, api_key=self.config.api_key,
                                          concurrency=self.config.concurrency, max_retries=self.config.max_retries,
                                          timeout=self.config.timeout)
        return self._backend

    def grade(self, question: str, gold: str, response: str, rubric: Rubric | str = SIMPLEQA) -> Judgment:
        """One judgment (stage 3's generative reward: ``judge.grade(q, gold, resp).reward``)."""
        rubric = RUBRICS[rubric] if isinstance(rubric, str) else rubric
        return self.grade_many([JudgeItem(question, gold, response, rubric)])[0]

    def grade_many(self, items: Sequence[JudgeItem]) -> list[Judgment]:
        from .backends.base import GenRequest

        model = self.config.model
        out: list[Judgment | None] = [None] * len(items)
        todo: list[tuple[int, list[dict], str]] = []
        for i, it in enumerate(items):
            msgs = it.rubric.messages(it.question, it.gold, it.response)
            ph = judge_prompt_hash(msgs)
            stored = None if self.rejudge else self._stored.get(_jkey(it.key, model, ph))
            if stored is not None:
                out[i] = interpret(it.rubric, stored.get("raw") or "", model, ph)
            else:
                todo.append((i, msgs, ph))
        if not todo:
            return out  # type: ignore[return-value]
        backend = self._backend_or_fail(len(todo))
        reqs = [GenRequest(messages=msgs, max_tokens=self.config.max_tokens, temperature=0.0, top_p=1.0,
                           seed=JUDGE_SEED, key=n) for n, (_, msgs, _) in enumerate(todo)]
        appender = None
        if self.path is not None:
            from .store import JsonlAppender

            self.path.parent.mkdir(parents=True, exist_ok=True)
            appender = JsonlAppender(self.path)
        try:
            for req, comp in backend.stream(reqs):
                i, _, ph = todo[req.key]
                it = items[i]
                extra = {"finish_reason": comp.finish_reason, "completion_tokens": comp.completion_tokens,
                         "latency": round(comp.latency, 4)}
                j = interpret(it.rubric, comp.text, model, ph, extra)
                out[i] = j
                k = tuple(it.key) if it.key is not None else (None, None, None)
                rec = {"task": k[0], "problem_id": k[1], "sample_idx": k[2], "judge_model": model, "prompt_hash": ph,
                       "rubric": it.rubric.name, "grade": j.grade, "raw": j.raw, **extra, "time": time.time()}
                with self._lock:
                    self.calls += 1
                    self._stored[_jkey(it.key, model, ph)] = rec
                if appender is not None:
                    appender.write([rec])  # flushed per line; fsynced below
        finally:
            if appender is not None:
                appender.close()  # fsync
        return out  # type: ignore[return-value]

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()


def stored_judge_model(path: Path) -> str | None:
    """The judge model of the latest judgment in a run's judgments.jsonl (``r1 score`` without judge flags)."""
    from .store import read_jsonl_tolerant

    recs = read_jsonl_tolerant(Path(path))
    return str(recs[-1].get("judge_model")) if recs else None


# ---------------------------------------------------------------------------------------------------------------
# Judge-graded tasks
# ---------------------------------------------------------------------------------------------------------------
class JudgedTask(Task):
    """A task whose completions an LLM judge grades against a free-form gold answer.

    Rule-checkable outcomes never reach the judge: an unclosed think block or a reply cut at the token limit is
    ``truncated``, an empty final answer is ``no_answer`` (SimpleQA counts both as not attempted)."""

    judge_graded: ClassVar[bool] = True
    rubric: ClassVar[Rubric] = SIMPLEQA

    def __init__(self):
        super().__init__()
        self.judge: Judge | None = None

    def set_judge(self, judge: Judge | None) -> None:
        self.judge = judge

    def precheck(self, item: ScoreItem) -> tuple[Verdict | None, str]:
        _, final = split_think(item.completion or "")
        if final is None:
            return Verdict(TRUNCATED, detail={"reason": "unclosed <think>"}), ""
        if item.finish_reason == "length":
            return Verdict(TRUNCATED, detail={"reason": "cut at the token limit"}), ""
        final = final.strip()
        if not final:
            return Verdict(NO_ANSWER, detail={"reason": "empty answer"}), ""
        return None, final

    def score(self, item: ScoreItem) -> Verdict:
        return self.score_many([item])[0]

    def score_many(self, items: list[ScoreItem]) -> list[Verdict]:
        out: list[Verdict | None] = [None] * len(items)
        asks: list[tuple[int, JudgeItem, str]] = []
        for i, it in enumerate(items):
            v, final = self.precheck(it)
            if v is not None:
                out[i] = v
            else:
                asks.append((i, JudgeItem(it.problem.question, str(it.problem.gold), final, self.rubric,
                                          getattr(it, "key", None)), final))
        if asks:
            if self.judge is None:
                # Only reachable from library code: the CLI refuses a judge-graded run without a judge up front.
                for i, _, final in asks:
                    out[i] = Verdict(ERROR, answer=_short(final), detail={"judge": None,
                                                                          "reason": f"no judge ({JUDGE_FLAGS})"})
            else:
                for (i, _, final), j in zip(asks, self.judge.grade_many([a for _, a, _ in asks])):
                    out[i] = Verdict(j.status, answer=_short(final), key=_answer_key(final), detail={"judge": j.detail()})
        return out  # type: ignore[return-value]

    def extra_results(self, problems, records: list[dict]) -> dict[str, Any]:
        return judge_summary(records)


def _short(text: str, n: int = 500) -> str:
    return text if len(text) <= n else text[:n] + "…"


def _answer_key(text: str) -> str:
    return " ".join(text.lower().split())[:200]


def judge_summary(records: list[dict]) -> dict[str, Any]:
    """SimpleQA's metrics (simple-evals' definitions) over every sample, plus how the judge behaved.

    not_attempted = the judge said NOT_ATTEMPTED, or there was no answer to judge (empty, unclosed think, cut at the
    token limit); unjudged samples (``error``: unparseable reply, no judge) are in none of the three and counted."""
    records = list(records)  # the runner may hand a re-iterable stream
    n = len(records)
    c = sum(1 for r in records if r.get("verdict") == CORRECT)
    inc = sum(1 for r in records if r.get("verdict") == INCORRECT)
    na = sum(1 for r in records if r.get("verdict") in (NO_ANSWER, TRUNCATED))
    unparseable = sum(1 for r in records if ((r.get("verdict_detail") or {}).get("judge") or {}).get("unparseable"))
    judged = sum(1 for r in records if isinstance((r.get("verdict_detail") or {}).get("judge"), dict))
    err = sum(1 for r in records if r.get("verdict") == ERROR)
    if not n:
        return {}
    correct, incorrect = c / n, inc / n
    attempted = correct + incorrect
    cga = correct / attempted if attempted > 0 else 0.0
    f = 2 * cga * correct / (cga + correct) if (cga + correct) > 0 else 0.0
    return {"correct": correct, "incorrect": incorrect, "not_attempted": na / n, "correct_given_attempted": cga,
            "f_score": f, "unjudged": err / n, "judge_calls_in_records": judged, "judge_unparseable": unparseable}


# ---------------------------------------------------------------------------------------------------------------
# Runner hooks
# ---------------------------------------------------------------------------------------------------------------
PAPER_STAGES = ("zero", "dev1", "dev2", "dev3", "r1")


def check_paper_stage(stage: str | None) -> str | None:
    if stage is not None and stage not in PAPER_STAGES:
        raise UserError(f"--paper-stage {stage!r}: expected one of {'|'.join(PAPER_STAGES)}")
    return stage


def preflight(tasks: Sequence[Task], config: JudgeConfig | None) -> None:
    """Before generation: a judge-graded task needs a judge, and the judge must answer."""
    require_judge(tasks, config)
    if config is not None and any(needs_judge(t) for t in tasks):
        check_reachable(config)


def detach(tasks: Sequence[Task]) -> None:
    """Take the judges off judge-graded tasks (registry singletons) once a run is done, so library code scoring them
    later in the same process gets "no judge", not the last run's judge and judgments file."""
    for t in tasks:
        if needs_judge(t):
            t.set_judge(None)


def attach(tasks: Sequence[Task], run_dir: Path, config: JudgeConfig | None, manifest: dict | None = None,
           rejudge: bool = False) -> Judge | None:
    """Give every judge-graded task of a run its judge (persisting to RUN/judgments.jsonl).

    Without a configured judge the run's stored judgments are used (by the judge model the manifest names); a
    sample without one is then a one-line error naming the judge flags."""
    judged = [t for t in tasks if needs_judge(t)]
    if not judged:
        return None
    if rejudge and (config is None or not config.live):
        raise UserError(f"--rejudge needs a judge: pass {JUDGE_FLAGS}")
    path = Path(run_dir) / JUDGMENTS
    if config is None:
        model = ((manifest or {}).get("judge") or {}).get("model") or stored_judge_model(path)
        config = JudgeConfig(model=str(model or "(none)"), base_url=None)
    judge = Judge(config, path, rejudge=rejudge)
    for t in judged:
        t.set_judge(judge)
    return judge
