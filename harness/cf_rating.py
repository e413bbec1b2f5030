"""Codeforces rating and percentile of a model, from its per-problem results.

Two estimators, both Elo with Codeforces' scale (a player rated 400 points higher wins with odds 10:1):

1. **Contest standings (CodeElo, arXiv 2501.01257)** — for each contest, place the model in the real standings by
   the points (Codeforces scoring) or solved count (ICPC scoring) of the problems it solved, then find the rating R
   at which its expected rank among the rated contestants equals that rank:

       rank = 1 + sum_i 1 / (1 + 10^((R - r_i) / 400))         (r_i: contestant i's rating before the round)

   This is the "seed" of Codeforces' own rating update. The model's rating is the mean over contests. Each
   sample index j is one attempt at the contest (problem solved iff sample j is correct), so k samples give k
   ranks per contest; the contest's rating is their mean. Assumptions, as in CodeElo: a solved problem scores its
   full points (submitted at minute 0, no penalty), an unsolved or skipped problem scores nothing; ties with
   contestants go the model's way (rank = 1 + number strictly ahead).

2. **Problem difficulty** — when only the problems' difficulty ratings d_p are known (a Codeforces difficulty is
   the rating with a 50% chance to solve), the R at which expected solves equal observed solves:

       sum_p 1 / (1 + 10^((d_p - R) / 400)) = sum_p pass@1_p

   with pass@1_p the mean correctness of problem p's samples. Cruder (no competitors, no time), but offline.

Percentile: the share (in percent, as in the paper's tables) of rated Codeforces users below R, from a
{rating: number of users} histogram (``codeforces/cf_user_ratings_2024_histogram.json``); users exactly at R count
half.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .errors import UserError

ELO_SCALE = 400.0
RATING_LO, RATING_HI = -1000.0, 5000.0  # search range: below the lowest and above the highest Codeforces rating
_BISECT_STEPS = 100


def win_probability(rating: float, opponent: float) -> float:
    """P(a player rated ``rating`` beats one rated ``opponent``)."""
    return 1.0 / (1.0 + 10.0 ** ((opponent - rating) / ELO_SCALE))


def expected_rank(rating: float, opponents: Sequence[float]) -> float:
    return 1.0 + sum(win_probability(r, rating) for r in opponents)


def _bisect(f, target: float, increasing: bool) -> tuple[float, bool]:
    """x in [RATING_LO, RATING_HI] with f(x) = target for monotone f; (x, clamped) where clamped says the target lies
    outside f's range over the search interval (e.g. rank 1 in a field of weak players, or zero solves)."""
    lo, hi = RATING_LO, RATING_HI
    f_lo, f_hi = f(lo), f(hi)
    if increasing:
        if target <= f_lo:
            return lo, True
        if target >= f_hi:
            return hi, True
    else:
        if target >= f_lo:
            return lo, True
        if target <= f_hi:
            return hi, True
    for _ in range(_BISECT_STEPS):
        mid = (lo + hi) / 2
        if (f(mid) < target) == increasing:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2, False


def rating_for_rank(rank: float, opponents: Sequence[float]) -> tuple[float, bool]:
    """CodeElo: the R whose expected rank among ``opponents`` equals ``rank``."""
    if not opponents:
        raise ValueError("a contest needs rated opponents")
    return _bisect(lambda r: expected_rank(r, opponents), rank, increasing=False)


def rating_from_difficulties(difficulties: Sequence[float], solve_rates: Sequence[float]) -> tuple[float, bool]:
    """The R at which the expected number of solved problems equals the observed one (sum of solve rates)."""
    if len(difficulties) != len(solve_rates) or not difficulties:
        raise ValueError("need one solve rate per problem, and at least one problem")
    observed = float(sum(solve_rates))
    return _bisect(lambda r: sum(win_probability(r, d) for d in difficulties), observed, increasing=True)


def percentile(rating: float, histogram: Mapping[Any, int]) -> float:
    """Percent of users rated below ``rating`` (users exactly at it count half)."""
    total = below = 0.0
    for r, n in histogram.items():
        r, n = float(r), float(n)
        total += n
        if r < rating:
            below += n
        elif r == rating:
            below += n / 2
    if total <= 0:
        raise ValueError("empty rating histogram")
    return 100.0 * below / total


def load_histogram(path: str | Path) -> dict[float, int]:
    try:
        raw = json.loads(Path(path).read_text())
        return {float(k): int(v) for k, v in raw.items()}
    except (OSError, ValueError, AttributeError) as e:
        raise UserError(f"{path}: not a {{rating: users}} JSON histogram ({e})") from e


# --- contest standings ------------------------------------------------------------------------------------------
@dataclass
class Contest:
    """One contest from the Codeforces API: ``contest.standings`` (problems, rows) + ``contest.ratingChanges``."""

    contest_id: str
    scoring: str  # "CF" (points) or "ICPC" (solved count, then penalty)
    problem_points: dict[str, float]  # problem index ("A", "D1") -> full points (1 for ICPC)
    contestants: list[tuple[float, float, float]]  # (points, penalty, rating before the round), rated only

    def model_rank(self, solved: Iterable[str]) -> int:
        pts = sum(self.problem_points.get(i, 0.0) for i in set(solved))
        penalty = 0.0  # every solve at minute 0, first try
        ahead = sum(1 for p, pen, _ in self.contestants if p > pts or (p == pts and pen < penalty))
        return 1 + ahead

    def opponents(self) -> list[float]:
        return [r for _, _, r in self.contestants]


def _result(obj: Any, what: str) -> Any:
    """Accept both a whole API response ({"status": "OK", "result": ...}) and its result."""
    if isinstance(obj, dict) and "status" in obj:
        if obj.get("status") != "OK":
            raise UserError(f"{what}: Codeforces API response with status {obj.get('status')!r}: {obj.get('comment')}")
        return obj.get("result")
    return obj


def parse_contest(entry: Mapping[str, Any], where: str, contest_id: str | None = None) -> Contest:
    standings = _result(entry.get("standings"), f"{where}: standings")
    changes = _result(entry.get("rating_changes", entry.get("ratingChanges")), f"{where}: rating_changes")
    if not isinstance(standings, dict) or "rows" not in standings or "problems" not in standings:
        raise UserError(f"{where}: 'standings' must be a contest.standings result (with 'problems' and 'rows')")
    if not isinstance(changes, list):
        raise UserError(f"{where}: 'rating_changes' must be a contest.ratingChanges result (a list)")
    contest = standings.get("contest") or {}
    cid = str(contest.get("id") or contest_id or entry.get("contest_id") or "")
    if not cid:
        raise UserError(f"{where}: no contest id (standings.contest.id)")
    scoring = str(contest.get("type") or "CF").upper()
    old = {str(c["handle"]).lower(): float(c["oldRating"]) for c in changes if "handle" in c and "oldRating" in c}
    points = {}
    for p in standings["problems"]:
        idx = str(p.get("index"))
        points[idx] = 1.0 if scoring == "ICPC" else float(p.get("points") or 0.0)
    rows = []
    for row in standings["rows"]:
        party = row.get("party") or {}
        if party.get("participantType", "CONTESTANT") != "CONTESTANT":
            continue  # virtual, practice and out-of-competition entries are not in the rated field
        members = party.get("members") or []
        if len(members) != 1:
            continue
        rating = old.get(str(members[0].get("handle", "")).lower())
        if rating is None:
            continue  # unrated participant: not part of the field the rank is measured in
        rows.append((float(row.get("points") or 0.0), float(row.get("penalty") or 0.0), rating))
    if not rows:
        raise UserError(f"{where}: contest {cid} has no rated contestants (standings rows x rating changes)")
    return Contest(cid, scoring, points, rows)


def load_standings(path: str | Path) -> dict[str, Contest]:
    """Contests from a JSON file: {contest_id: {"standings": ..., "rating_changes": ...}} (the layout of the
    offline caches built from the API), or a list of such entries (each with its standings' contest id), or one
    entry. "standings"/"rating_changes" may be whole API responses or their "result"."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise UserError(f"cannot read the standings file {p}: {e}") from e
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as e:
            raise UserError(f"{p}: neither JSON nor JSON lines ({e})") from e
    out: dict[str, Contest] = {}
    if isinstance(data, dict) and "standings" in data:
        data = [data]
    if isinstance(data, dict):
        for cid, entry in data.items():
            c = parse_contest(entry, f"{p} [{cid}]", contest_id=str(cid))
            out[c.contest_id] = c
    elif isinstance(data, list):
        for i, entry in enumerate(data):
            if not isinstance(entry, dict):
                raise UserError(f"{p}: entry {i} is not an object")
            c = parse_contest(entry, f"{p} [{i}]")
            out[c.contest_id] = c
    else:
        raise UserError(f"{p}: expected an object keyed by contest id or a list of contests")
    return out


def split_problem_id(problem_id: str) -> tuple[str, str]:
    """'1972D1' -> ('1972', 'D1')."""
    i = 0
    while i < len(problem_id) and problem_id[i].isdigit():
        i += 1
    return problem_id[:i], problem_id[i:]


def standings_rating(contests: Mapping[str, Contest], records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """CodeElo rating from sample records (problem_id, sample_idx, verdict) over the contests with standings."""
    solved: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    attempts: dict[str, set[int]] = defaultdict(set)
    for r in records:
        cid, idx = split_problem_id(str(r["problem_id"]))
        if cid not in contests:
            continue
        j = int(r["sample_idx"])
        attempts[cid].add(j)
        if r.get("verdict") == "correct":
            solved[cid][j].add(idx)
    per_contest = {}
    for cid in sorted(attempts, key=lambda c: int(c) if c.isdigit() else c):
        c = contests[cid]
        opp = c.opponents()
        ratings, ranks, clamped = [], [], False
        for j in sorted(attempts[cid]):
            rank = c.model_rank(solved[cid][j])
            r, cl = rating_for_rank(rank, opp)
            ratings.append(r)
            ranks.append(rank)
            clamped |= cl
        per_contest[cid] = {"rating": sum(ratings) / len(ratings), "mean_rank": sum(ranks) / len(ranks),
                            "contestants": len(opp), "attempts": len(ratings), "clamped": clamped}
    if not per_contest:
        return {"rating": None, "contests": {}, "n_contests": 0}
    mean = sum(v["rating"] for v in per_contest.values()) / len(per_contest)
    return {"rating": mean, "contests": per_contest, "n_contests": len(per_contest)}


def difficulty_rating(problem_ratings: Mapping[str, float], records: Iterable[Mapping[str, Any]],
                      exclude: Iterable[str] = ()) -> dict[str, Any]:
    """Elo from problem difficulties and pass@1 per problem (problems without records or rating are left out)."""
    skip = set(exclude)
    by_pid: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        by_pid[str(r["problem_id"])].append(r.get("verdict") == "correct")
    pids = sorted(p for p in by_pid if p in problem_ratings and p not in skip)
    if not pids:
        return {"rating": None, "n_problems": 0}
    rates = [sum(by_pid[p]) / len(by_pid[p]) for p in pids]
    rating, clamped = rating_from_difficulties([float(problem_ratings[p]) for p in pids], rates)
    return {"rating": rating, "n_problems": len(pids), "expected_solves": sum(rates), "clamped": clamped}
