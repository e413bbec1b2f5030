"""Both Codeforces rating estimators on synthetic data whose answer is known in closed form."""
from __future__ import annotations

import json
import math

import pytest

from harness import cf_rating as cf
from harness.errors import UserError


def closed_form_rank_rating(rank: float, n: int, r0: float) -> float:
    # n opponents all rated r0: rank = 1 + n / (1 + 10^((R - r0)/400))  =>  R = r0 + 400 log10(n/(rank-1) - 1)
    return r0 + 400 * math.log10(n / (rank - 1) - 1)


@pytest.mark.parametrize("rank", [2, 10, 50.5, 80, 99])
def test_rating_for_rank_matches_closed_form(rank):
    r, clamped = cf.rating_for_rank(rank, [1500.0] * 99)
    assert not clamped
    assert r == pytest.approx(closed_form_rank_rating(rank, 99, 1500.0), abs=1e-6)


def test_rating_for_rank_inverts_expected_rank_on_a_mixed_field():
    field = [800 + 37 * i for i in range(60)]  # 800 .. 2983
    for true_r in (900.0, 1543.2, 2400.0):
        rank = cf.expected_rank(true_r, field)
        r, clamped = cf.rating_for_rank(rank, field)
        assert not clamped and r == pytest.approx(true_r, abs=1e-6)
    assert cf.rating_for_rank(50.5, [1500.0] * 99)[0] == pytest.approx(1500.0, abs=1e-6)


def test_rank_one_is_clamped_not_infinite():
    r, clamped = cf.rating_for_rank(1, [1500.0] * 10)
    assert clamped and r == cf.RATING_HI


@pytest.mark.parametrize("p", [0.1, 0.5, 0.75, 0.9])
def test_difficulty_rating_matches_closed_form(p):
    # every problem rated 1600, solved with probability p: R = 1600 + 400 log10(p / (1 - p))
    r, clamped = cf.rating_from_difficulties([1600.0] * 20, [p] * 20)
    assert not clamped
    assert r == pytest.approx(1600 + 400 * math.log10(p / (1 - p)), abs=1e-6)


def test_difficulty_rating_from_records_uses_pass_at_1_and_skips_excluded():
    ratings = {"1A": 1200, "1B": 1200, "1C": 1200, "1D": 1200}
    recs = []
    for pid in ("1A", "1B", "1C", "1D"):
        for j in range(4):
            correct = (pid in ("1A", "1B") and j < 2) or pid == "1D"
            recs.append({"problem_id": pid, "sample_idx": j, "verdict": "correct" if correct else "incorrect"})
    out = cf.difficulty_rating(ratings, recs, exclude=["1D"])
    # A, B at 0.5, C at 0: one expected solve out of three equally rated problems -> p = 1/3
    assert out["n_problems"] == 3 and out["expected_solves"] == pytest.approx(1.0)
    assert out["rating"] == pytest.approx(1200 + 400 * math.log10(0.5), abs=1e-6)
    assert cf.difficulty_rating(ratings, [])["rating"] is None


def test_zero_solves_is_clamped_low():
    r, clamped = cf.rating_from_difficulties([800.0, 1000.0], [0.0, 0.0])
    assert clamped and r == cf.RATING_LO


def test_percentile():
    hist = {"1000": 10, "1500": 20, "2000": 10}
    assert cf.percentile(1200, hist) == pytest.approx(25.0)
    assert cf.percentile(1500, hist) == pytest.approx(50.0)  # half of those at 1500
    assert cf.percentile(2500, hist) == pytest.approx(100.0)
    assert cf.percentile(500, hist) == 0.0


def _api_contest(cid: int, scoring: str, problems: list[tuple[str, float]], field: list[tuple[float, float, float]]):
    """A contest in the Codeforces API's shapes: contest.standings + contest.ratingChanges responses."""
    rows, changes = [], []
    for i, (points, penalty, rating) in enumerate(field):
        handle = f"user{cid}_{i}"
        rows.append({"party": {"contestId": cid, "members": [{"handle": handle}], "participantType": "CONTESTANT"},
                     "rank": 0, "points": points, "penalty": penalty, "problemResults": []})
        changes.append({"contestId": cid, "handle": handle, "rank": 0, "oldRating": rating, "newRating": rating})
    # entries outside the rated field must be ignored
    rows.append({"party": {"members": [{"handle": "virtual"}], "participantType": "VIRTUAL"}, "points": 1e9, "penalty": 0})
    rows.append({"party": {"members": [{"handle": "unrated"}], "participantType": "CONTESTANT"}, "points": 1e9, "penalty": 0})
    standings = {"status": "OK", "result": {
        "contest": {"id": cid, "name": f"Round {cid}", "type": scoring, "phase": "FINISHED"},
        "problems": [{"contestId": cid, "index": idx, "points": pts, "name": idx} for idx, pts in problems],
        "rows": rows}}
    return {"standings": standings, "rating_changes": {"status": "OK", "result": changes}}


def test_codeelo_standings_rating_on_synthetic_contests(tmp_path):
    # Contest 9001 (Codeforces scoring): 99 contestants rated 1500; 29 scored 3000, 70 scored 500.
    # A model solving A + B (500 + 1000 = 1500 points) is ranked 30th.
    field1 = [(3000.0, 0.0, 1500.0)] * 29 + [(500.0, 0.0, 1500.0)] * 70
    c1 = _api_contest(9001, "CF", [("A", 500), ("B", 1000), ("C", 1500)], field1)
    # Contest 9002 (ICPC scoring): 49 contestants rated 1800; 9 solved 3, 20 solved 2 (with penalty), 20 solved 1.
    # Solving two problems at minute 0 ranks 10th (ties on solves are broken by penalty, the model's is 0).
    field2 = [(3.0, 100.0, 1800.0)] * 9 + [(2.0, 50.0, 1800.0)] * 20 + [(1.0, 10.0, 1800.0)] * 20
    c2 = _api_contest(9002, "ICPC", [("A", 0), ("B", 0), ("C", 0), ("D1", 0)], field2)
    path = tmp_path / "standings.json"
    path.write_text(json.dumps({"9001": c1, "9002": c2}))
    contests = cf.load_standings(path)
    assert set(contests) == {"9001", "9002"}
    assert len(contests["9001"].contestants) == 99  # virtual and unrated rows dropped

    recs = []
    for j in range(2):  # two attempts at each contest, the same outcome
        for pid, ok in [("9001A", True), ("9001B", True), ("9001C", False),
                        ("9002A", True), ("9002D1", True), ("9002B", False), ("4242A", True)]:
            recs.append({"problem_id": pid, "sample_idx": j, "verdict": "correct" if ok else "incorrect"})
    out = cf.standings_rating(contests, recs)
    r1 = closed_form_rank_rating(30, 99, 1500.0)
    r2 = closed_form_rank_rating(10, 49, 1800.0)
    assert out["contests"]["9001"]["mean_rank"] == 30 and out["contests"]["9002"]["mean_rank"] == 10
    assert out["contests"]["9001"]["rating"] == pytest.approx(r1, abs=1e-6)
    assert out["contests"]["9002"]["rating"] == pytest.approx(r2, abs=1e-6)
    assert out["rating"] == pytest.approx((r1 + r2) / 2, abs=1e-6)
    assert out["n_contests"] == 2  # 4242 has no standings: not counted


def test_each_sample_index_is_one_attempt():
    contests = {"7": cf.parse_contest(_api_contest(7, "ICPC", [("A", 0), ("B", 0)],
                                                   [(2.0, 5.0, 1500.0)] * 10 + [(1.0, 5.0, 1500.0)] * 10), "x")}
    recs = [{"problem_id": "7A", "sample_idx": 0, "verdict": "correct"},
            {"problem_id": "7B", "sample_idx": 0, "verdict": "correct"},
            {"problem_id": "7A", "sample_idx": 1, "verdict": "incorrect"},
            {"problem_id": "7B", "sample_idx": 1, "verdict": "incorrect"}]
    out = cf.standings_rating(contests, recs)["contests"]["7"]
    # attempt 0 solves both (rank 1, clamped high); attempt 1 solves none (rank 21 of 20, clamped low)
    assert out["mean_rank"] == pytest.approx(11.0)
    assert out["clamped"] and out["rating"] == pytest.approx((cf.RATING_HI + cf.RATING_LO) / 2)


def test_bad_standings_files_are_user_errors(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"1": {"standings": {"status": "FAILED", "comment": "contestId not found"}, "rating_changes": []}}))
    with pytest.raises(UserError, match="FAILED"):
        cf.load_standings(p)
    p.write_text("not json at all {")
    with pytest.raises(UserError):
        cf.load_standings(p)
    with pytest.raises(UserError):
        cf.load_standings(tmp_path / "missing.json")
