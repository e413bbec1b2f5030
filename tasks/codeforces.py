"""`codeforces`: 408 Codeforces problems (57 contests, May-Oct 2024) with a rating and a percentile.

The R1 paper's Codeforces set (10 Div. 2 contests with expert tests) is not public. Data here:
``codeforces/deepcoder_cf_test.jsonl`` (DeepCoder's test split: statement, time/memory limits, tags and tests —
mostly just the statement's sample, so results.json says ``hidden_tests_absent: true``),
``codeforces/cf_problem_ratings.jsonl`` (official difficulty of every problem) and
``codeforces/cf_user_ratings_2024_histogram.json`` (2024 rated users, for the percentile).

- Prompt: the statement with its "Tags:" section removed (tags name the technique: a leak R1 did not get), in
  LiveCodeBench's stdin/stdout format (``tasks/livecodebench.py``).
- Interactive problems (tag ``interactive``) cannot be judged with fixed stdin/stdout tests: they are skipped (not
  generated, not scored) and counted in results.json as ``interactive_skipped``.
- Rating (``harness/cf_rating.py``): the CodeElo method from contest standings when a standings file in the
  Codeforces API's format is given (``configure(cf_standings=FILE)``, CLI ``--cf-standings``, or env
  ``R1_CF_STANDINGS``); otherwise the Elo estimate from problem difficulties (expected solves = observed pass@1
  solves). ``percentile`` is in percent, like the paper's tables.
- Limits: wall clock = 2x the problem's time limit (at least 2 s): CPython on a shared machine is not the judge's
  hardware. Address space = the memory limit + 128 MiB, because RLIMIT_AS counts the interpreter's own mappings,
  which the judge's memory accounting does not.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from harness import cf_rating
from harness import data as hdata
from harness.errors import DataMissing, UserError
from harness.task import Problem, Prompt, ScoreItem, Task
from harness.verifiers import code
from harness.verifiers.base import Verdict

from .livecodebench import FORMAT_WITHOUT_STARTER, PROMPT_HEADER

RELPATH = "codeforces/deepcoder_cf_test.jsonl"
RATINGS_RELPATH = "codeforces/cf_problem_ratings.jsonl"
HISTOGRAM_RELPATH = "codeforces/cf_user_ratings_2024_histogram.json"
STANDINGS_ENV = "R1_CF_STANDINGS"
TIME_FACTOR, MIN_TIME_S = 2.0, 2.0
MEMORY_ALLOWANCE_MB = 128

_TAGS = re.compile(r"\n*Tags:\n\[[^\n]*\]\n*", re.S)


def strip_tags(statement: str) -> str:
    return _TAGS.sub("\n\n", statement).strip()


def cf_prompt(statement: str) -> str:
    return (PROMPT_HEADER + f"Question: {strip_tags(statement)}\n\n"
            f"{FORMAT_WITHOUT_STARTER}\n```python\n# YOUR CODE HERE\n```\n\n")


def is_interactive(row: dict) -> bool:
    return "interactive" in (row.get("tags") or []) or "interactive problem" in row.get("problem", "").lower()


@dataclass
class CFProblem(Problem):
    prompt_text: str = ""
    tests: list[dict] = field(default_factory=list)
    time_limit_s: float = 2.0
    memory_mb: int = 256


class Codeforces(Task):
    name = "codeforces"
    default_k = 8  # samples per problem: pass@1 per problem feeds the difficulty estimator, k attempts per contest
    files = (RELPATH, RATINGS_RELPATH, HISTOGRAM_RELPATH)
    breakdowns = ("problem_index",)

    def __init__(self):
        super().__init__()
        self.standings_path: str | None = None
        self.interactive: list[str] = []
        self.problem_ratings: dict[str, float] = {}
        self.histogram: dict[float, int] | None = None

    def configure(self, cf_standings: str | None = None, **_ignored) -> None:
        self.standings_path = cf_standings

    def load_problems(self, data_dir=None) -> list[Problem]:
        path = hdata.resolve(RELPATH, None, data_dir)
        self.data_hashes = {RELPATH: hdata.file_sha256(path)}
        self.interactive, out = [], []
        for lineno, row in enumerate(hdata.read_jsonl(path), 1):
            try:
                pid = str(row["problem_id"])
                if is_interactive(row):
                    self.interactive.append(pid)
                    continue
                tests = [{"input": t["input"], "output": t["output"]} for t in row["tests"]]
                out.append(CFProblem(
                    id=pid, gold=tests, question=strip_tags(row["problem"]),
                    meta={"contest_id": str(row["contest_id"]), "problem_index": str(row["index"])[:1]},
                    prompt_text=cf_prompt(row["problem"]), tests=tests,
                    time_limit_s=max(MIN_TIME_S, TIME_FACTOR * int(row["time_limit_ms"]) / 1000),
                    memory_mb=int(row["memory_limit_mb"]) + MEMORY_ALLOWANCE_MB,
                ))
            except (KeyError, TypeError, ValueError) as e:
                raise UserError(f"{path}:{lineno}: bad problem row ({type(e).__name__}: {e})") from e
        self._load_rating_data(data_dir)
        return out

    def _load_rating_data(self, data_dir) -> None:
        try:
            rpath = hdata.resolve(RATINGS_RELPATH, None, data_dir)
            self.problem_ratings = {str(r["problem_id"]): float(r["rating"]) for r in hdata.read_jsonl(rpath)
                                    if r.get("rating") is not None}
            self.data_hashes[RATINGS_RELPATH] = hdata.file_sha256(rpath)
        except DataMissing:
            self.problem_ratings = {}
        try:
            hpath = hdata.resolve(HISTOGRAM_RELPATH, None, data_dir)
            self.histogram = cf_rating.load_histogram(hpath)
            self.data_hashes[HISTOGRAM_RELPATH] = hdata.file_sha256(hpath)
        except DataMissing:
            self.histogram = None

    def prompt(self, problem: Problem, seed: int) -> Prompt:
        return Prompt(messages=[{"role": "user", "content": problem.prompt_text}])

    def _job(self, item: ScoreItem) -> code.CodeJob:
        p = item.problem
        return code.CodeJob(item.completion, p.tests, item.finish_reason, mode="stdin",
                            time_limit=p.time_limit_s, memory_mb=p.memory_mb)

    def score(self, item: ScoreItem) -> Verdict:
        return code.score_many([self._job(item)])[0]

    def score_many(self, items: list[ScoreItem]) -> list[Verdict]:
        return code.score_many([self._job(it) for it in items])

    def extra_results(self, problems: list[Problem], records: list[dict]) -> dict[str, Any]:
        res: dict[str, Any] = {
            "interactive_skipped": len(self.interactive),
            "interactive_skipped_ids": list(self.interactive),  # reports name them (issue 13)
            "hidden_tests_absent": True,
            "tests_source": "DeepCoder's tests: mostly the statement's sample test only",
        }
        by_difficulty = cf_rating.difficulty_rating(self.problem_ratings, records) if self.problem_ratings else None
        standings = self.standings_path or os.environ.get(STANDINGS_ENV)
        if standings:
            est = cf_rating.standings_rating(cf_rating.load_standings(standings), records)
            res.update(rating=est["rating"], rating_method="codeelo_standings", rating_contests=est["n_contests"],
                       rating_per_contest={c: round(v["rating"], 1) for c, v in est["contests"].items()},
                       standings_file=str(standings))
            if by_difficulty:
                res["rating_from_difficulty"] = by_difficulty["rating"]
        elif by_difficulty and by_difficulty["rating"] is not None:
            res.update(rating=by_difficulty["rating"], rating_method="problem_difficulty_elo",
                       rating_problems=by_difficulty["n_problems"], rating_clamped=by_difficulty["clamped"])
        else:
            res.update(rating=None, rating_method=None)
        if res.get("rating") is not None and self.histogram:
            res["percentile"] = cf_rating.percentile(res["rating"], self.histogram)
            res["percentile_reference"] = "Codeforces rated users, 2024 (percent below the rating)"
        else:
            res["percentile"] = None
        return res


TASKS = [Codeforces()]
