"""aime2024, aime2025 and math500 on the real data: ids, golds, the paper's prompt and defaults, scoring through the
shared verifier, and the real CLI end to end (embedded model; import + score of a hand-written file)."""
import json
from collections import Counter

import pytest

from conftest import run_r1
from harness.config import MATH_INSTRUCTION
from harness.errors import UserError
from harness.task import Problem, ScoreItem, get_task
from harness.verifiers.base import CORRECT, INCORRECT, NO_ANSWER, STATUSES, TRUNCATED
from tasks.aime import AIME2024
from tasks.math500 import Math500


@pytest.fixture(scope="module")
def loaded(data_dir):
    return {n: (get_task(n), get_task(n).problems(data_dir)) for n in ("aime2024", "aime2025", "math500")}


@pytest.mark.parametrize("name,year", [("aime2024", 2024), ("aime2025", 2025)])
def test_aime_ids_golds_and_defaults(loaded, name, year):
    t, probs = loaded[name]
    assert (t.default_k, t.cons_k) == (64, 64)
    assert [p.id for p in probs] == [f"{year}-{c}-{i}" for c in ("I", "II") for i in range(1, 16)]
    assert all(p.gold == str(int(p.gold)) and 0 <= int(p.gold) <= 999 for p in probs)  # no zero padding
    assert list(t.data_hashes) == [t.relpath]


def test_aime_golds_match_the_files(loaded, data_dir):
    _, probs = loaded["aime2024"]
    rows = [json.loads(x) for x in (data_dir / "aime2024" / "aime24.jsonl").read_text().splitlines()]
    by_url = {r["url"].rsplit("/", 2)[-2].split("_")[2] + "-" + r["url"].rsplit("_", 1)[-1]: r["answer"] for r in rows}
    assert {p.id: p.gold for p in probs} == {f"2024-{k}": str(int(v)) for k, v in by_url.items()}
    assert any(r["answer"].startswith("0") for r in rows)  # the file really pads: "025"
    _, probs25 = loaded["aime2025"]
    rows25 = {r["id"]: r["answer"] for r in map(json.loads, (data_dir / "aime2025" / "aime25.jsonl").read_text().splitlines())}
    assert {p.id: p.gold for p in probs25} == rows25


def test_math500_ids_meta_and_defaults(loaded):
    t, probs = loaded["math500"]
    assert t.default_k == 4 and t.cons_k is None and tuple(t.breakdowns) == ("subject", "level")
    assert len(probs) == 500 and len({p.id for p in probs}) == 500
    assert probs[0].id == "test/precalculus/807.json" and probs[0].gold == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert Counter(p.meta["subject"] for p in probs)["Algebra"] == 124
    assert Counter(p.meta["level"] for p in probs) == {1: 43, 2: 90, 3: 105, 4: 128, 5: 134}


@pytest.mark.parametrize("name", ["aime2024", "aime2025", "math500"])
def test_paper_prompt(loaded, name):
    t, probs = loaded[name]
    pr = t.prompt(probs[3], seed=123)
    assert pr.messages == [{"role": "user", "content": probs[3].question + "\n" + MATH_INSTRUCTION}]
    assert MATH_INSTRUCTION == "Please reason step by step, and put your final answer within \\boxed{}."
    assert t.prompt(probs[3], seed=9).messages == pr.messages  # no sampling in the prompt itself


def _item(p: Problem, completion: str, finish: str = "stop") -> ScoreItem:
    return ScoreItem(problem=p, completion=completion, finish_reason=finish, prompt_meta={})


def test_score_many_on_real_problems(loaded):
    t, probs = loaded["math500"]
    p0 = probs[0]  # \left( 3, \frac{\pi}{2} \right)
    items = [
        _item(p0, "<think>\nconvert\n</think>\nSo $(r,\\theta) = \\boxed{\\left(3, \\frac{\\pi}{2}\\right)}$."),
        _item(p0, "<think>\nconvert\n</think>\n\\boxed{(3, \\pi/2)}"),
        _item(p0, "<think>\nconvert\n</think>\n\\boxed{(3, \\pi)}"),
        _item(p0, "<think>\nconvert and convert and", "length"),
        _item(p0, "<think>\nconvert\n</think>\nI could not solve it."),
    ]
    vs = t.score_many(items)
    assert [v.status for v in vs] == [CORRECT, CORRECT, INCORRECT, TRUNCATED, NO_ANSWER]
    assert vs[0].key == vs[1].key != vs[2].key
    assert t.score(items[2]).status == INCORRECT

    a, aprobs = loaded["aime2024"]
    p = next(q for q in aprobs if q.id == "2024-I-2")  # gold 25, stored as "025" in the file
    assert p.gold == "25"
    vs = a.score_many([_item(p, "<think>\n.\n</think>\n\\boxed{025}"), _item(p, "<think>\n.\n</think>\n\\boxed{25}"),
                       _item(p, "<think>\n.\n</think>\n\\boxed{250}")])
    assert [v.status for v in vs] == [CORRECT, CORRECT, INCORRECT]
    assert vs[0].key == vs[1].key == "num:25"
    # a gold given on an import line may be padded too
    assert a.score(_item(Problem(id="x", gold="007"), "\\boxed{7}")).correct


def test_extra_results_counts_how_answers_were_found(loaded):
    t, probs = loaded["math500"]
    recs = [{"verdict_detail": {"by": "boxed", "path": "fast"}}, {"verdict_detail": {"by": "fallback", "path": "sympy"}},
            {"verdict_detail": {"reason": "unclosed <think>"}}, {}]
    assert t.extra_results(probs, recs) == {"answer_extraction": {"boxed": 1, "fallback": 1},
                                            "verifier_path": {"fast": 1, "sympy": 1}}


def test_bad_data_names_file_line_and_field(tmp_path):
    (tmp_path / "math500").mkdir()
    (tmp_path / "math500" / "test.jsonl").write_text(
        json.dumps({"problem": "1+1?", "answer": "2", "subject": "Algebra", "level": 1, "unique_id": "a"}) + "\n"
        + json.dumps({"problem": "2+2?", "answer": "", "subject": "Algebra", "level": 1, "unique_id": "b"}) + "\n")
    with pytest.raises(UserError, match=r"math500/test.jsonl: line 2: field 'answer'"):
        Math500().problems(tmp_path)
    (tmp_path / "aime2024").mkdir()
    row = {"id": 60, "problem": "p", "answer": "12.5", "url": "https://x/wiki/index.php/2024_AIME_I_Problems/Problem_1"}
    (tmp_path / "aime2024" / "aime24.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(UserError, match=r"line 1: AIME answer must be an integer"):
        AIME2024().problems(tmp_path)
    row.update(answer="12", url="https://x/somewhere")
    (tmp_path / "aime2024" / "aime24.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(UserError, match=r"line 1: field 'url'"):
        AIME2024().problems(tmp_path)


# --- the real CLI -------------------------------------------------------------------------------------------------
def test_eval_end_to_end_on_the_embedded_model(tmp_path, data_dir):
    out = tmp_path / "run"
    # --think-prefix on: auto turns it off for SmolLM2 (a plain chat model); this test is about the forced prefix.
    run_r1("eval", "--task", "math500", "--limit", "5", "-n", "2", "--max-tokens", "64", "--out", str(out),
           "--data-dir", str(data_dir), "--no-progress", "--think-prefix", "on")
    recs = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    manifest = json.loads((out / "manifest.json").read_text())
    res = json.loads((out / "results.json").read_text())["tasks"]["math500"]
    first5 = [p.id for p in get_task("math500").problems(data_dir, 5)]
    assert sorted({r["problem_id"] for r in recs}) == sorted(first5)
    assert sorted((r["problem_id"], r["sample_idx"]) for r in recs) == sorted((p, i) for p in first5 for i in range(2))
    for r in recs:
        assert r["task"] == "math500" and r["verdict"] in STATUSES
        assert {"completion", "finish_reason", "answer", "answer_key", "verdict_detail"} <= set(r)
        assert r["completion"].startswith("<think>\n")  # the paper's forced prefix is part of what is scored
        if "</think>" not in r["completion"]:
            assert r["verdict"] == TRUNCATED and r["answer"] is None
        if r["verdict"] in (TRUNCATED, NO_ANSWER):
            assert r["answer_key"] is None
    assert manifest["tasks"]["math500"]["n"] == 2
    assert res["n_problems"] == 5 and res["samples_per_problem"] == 2
    assert sum(res["verdicts"].values()) == 10
    assert res["verdicts"] == {s: sum(r["verdict"] == s for r in recs) for s in STATUSES}
    assert res["pass@1"] == pytest.approx(sum(r["verdict"] == CORRECT for r in recs) / 10)
    probs = {p.id: p for p in get_task("math500").problems(data_dir, 5)}
    assert set(res["breakdowns"]) == {"subject", "level"}
    assert sum(g["n_problems"] for g in res["breakdowns"]["subject"].values()) == 5
    assert set(res["breakdowns"]["level"]) == {str(p.meta["level"]) for p in probs.values()}
    # rescoring the stored samples gives the same verdicts
    run_r1("score", str(out))
    res2 = json.loads((out / "results.json").read_text())["tasks"]["math500"]
    assert res2["verdicts"] == res["verdicts"] and res2["pass@1"] == res["pass@1"]


THINK = "<think>\nworking\n</think>\n"


def test_import_and_score_hand_written_generations(tmp_path, data_dir):
    lines = [
        # gold 204: correct, correct (anchored sentence), wrong, cut off while thinking
        {"problem_id": "2024-I-1", "completions": [THINK + "\\boxed{204}", THINK + "The answer is $204$.",
                                                     THINK + "\\boxed{205}", "<think>\nlong thoughts"]},
        # gold 25 ("025" in the file): padded, tag, fraction -> all correct; then cut off by the length limit
        {"problem_id": "2024-I-2", "completions": [THINK + "\\boxed{025}", THINK + "<answer>25</answer>",
                                                     THINK + "\\boxed{\\frac{50}{2}}", THINK + "so 5 times 5 is"],
         "finish_reasons": ["stop", "stop", "stop", "length"]},
        # a problem outside the dataset with its own padded gold: one right, three agreeing wrong, one silent
        {"problem_id": "custom-1", "gold": "007",
         "completions": [THINK + "\\boxed{7}", THINK + "\\boxed{8}", THINK + "\\boxed{8.0}", THINK + "\\boxed{\\frac{16}{2}}"]},
        {"problem_id": "2024-II-3", "completions": [THINK + "I give up.", THINK + "\\boxed{0}", THINK + "\\boxed{1}",
                                                      THINK + "\\boxed{2}"]},
    ]
    src = tmp_path / "gen.jsonl"
    src.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "imp"
    run_r1("import", "--format", "jsonl", "--task", "aime2024", "--model", "someone/model", str(src), "--out", str(out),
           "--data-dir", str(data_dir))
    res = json.loads((out / "results.json").read_text())["tasks"]["aime2024"]
    gold_ii3 = next(p.gold for p in get_task("aime2024").problems(data_dir) if p.id == "2024-II-3")
    assert gold_ii3 not in ("0", "1", "2")
    assert res["n_problems"] == 4 and res["n_samples"] == 16
    assert res["verdicts"] == {"correct": 2 + 3 + 1, "incorrect": 1 + 0 + 3 + 3, "truncated": 1 + 1, "no_answer": 1,
                               "timeout": 0, "error": 0}
    assert res["pass@1"] == pytest.approx((2 / 4 + 3 / 4 + 1 / 4 + 0) / 4)
    # cons@4 (cons@64 capped at the 4 samples given): 204 wins, 25 wins, 8 wins (8, 8.0, 16/2 vote together), tie
    # among 0/1/2 goes to the earliest (0), wrong
    assert res["cons_k"] == 4 and res["cons@4"] == pytest.approx(2 / 4)
    recs = {(r["problem_id"], r["sample_idx"]): r for r in map(json.loads, (out / "samples.jsonl").read_text().splitlines())}
    assert recs[("custom-1", 1)]["answer_key"] == recs[("custom-1", 2)]["answer_key"] == recs[("custom-1", 3)]["answer_key"]
    assert recs[("2024-I-2", 3)]["verdict"] == TRUNCATED
    run_r1("score", str(out))
    res2 = json.loads((out / "results.json").read_text())["tasks"]["aime2024"]
    assert (res2["verdicts"], res2["pass@1"], res2["cons@4"]) == (res["verdicts"], res["pass@1"], res["cons@4"])
