"""Table 4's rule-graded rest: MMLU-Pro, MMLU-Redux, IF-Eval, CNMO 2024, DROP, C-Eval, CLUEWSC.

Counts are the ones the data's SOURCE.md files state; hand-written completions have verdicts worked out by hand.
"""
import json
from collections import Counter

import pytest

from harness.cli import main as r1_main
from harness.errors import UserError
from harness.task import ScoreItem, get_task, sample_seed
from harness.verifiers import drop as dropv
from harness.verifiers.base import CORRECT, INCORRECT, NO_ANSWER, TRUNCATED

NEW_TASKS = ("mmlu_pro", "mmlu_redux", "ifeval", "cnmo2024", "drop", "ceval", "cluewsc")


@pytest.fixture(autouse=True)
def default_options():
    """Tasks are registry singletons: every test starts and ends with default options."""
    for n in ("mmlu_pro", "mmlu_redux"):
        get_task(n).configure()
    yield
    for n in ("mmlu_pro", "mmlu_redux"):
        get_task(n).configure()


def _score(task, problem, completion, finish_reason="stop"):
    pr = task.prompt(problem, sample_seed(0, task.name, problem.id, 0))
    return task.score(ScoreItem(problem, completion, finish_reason, pr.meta))


def _problem(task, data_dir, pid):
    return next(p for p in task.problems(data_dir) if p.id == pid)


# --- problems loaded --------------------------------------------------------------------------------------------
def test_mmlu_pro_loads_all_12032_with_category_counts(data_dir):
    t = get_task("mmlu_pro")
    probs = t.problems(data_dir)
    assert len(probs) == 12032 and len({p.id for p in probs}) == 12032
    cats = Counter(p.meta["category"] for p in probs)
    assert len(cats) == 14 and cats["math"] == 1351 and cats["history"] == 381 and cats["computer science"] == 410
    assert probs[0].id == "70"  # question_id, file order
    opts = Counter(len(p.options) for p in probs)
    assert opts[10] == 9982 and sum(opts.values()) - opts[10] == 2050
    # the upstream row whose answer letter and answer_index disagree is graded on the letter
    assert _problem(t, data_dir, "3983").gold == "C"
    assert set(t.data_hashes) == {"mmlu_pro/test-00000-of-00001.parquet", "mmlu_pro/validation-00000-of-00001.parquet"}


def test_mmlu_pro_prompts_zero_and_five_shot(data_dir):
    t = get_task("mmlu_pro")
    p = t.problems(data_dir)[0]  # the first row (--limit is stratified)
    text = t.prompt(p, 0).messages[0]["content"]
    assert text.startswith("The following are multiple choice questions (with answers) about business. Think step "
                           'by step and then finish your answer with "the answer is (X)" where X is the correct '
                           "letter choice.\nQuestion:\n")
    assert "\nI. Unsafe practices, Distress, Fear, Serious\nAnswer: Let's think step by step." in text
    assert text.count("Question:") == 1
    t.configure(mmlu_pro_shots=5)
    five = t.prompt(p, 0).messages[0]["content"]
    assert five.count("Question:\n") == 6 and five.count("The answer is (") == 5 and five.endswith(text.split("\n", 1)[1])
    with pytest.raises(UserError, match="--mmlu-pro-shots"):
        t.configure(mmlu_pro_shots=3)


def test_mmlu_redux_subsets_and_filters(data_dir):
    t = get_task("mmlu_redux")
    probs = t.problems(data_dir)
    assert len(probs) == 5432  # 5,330 ok + 102 wrong_groundtruth with a usable correction
    assert t.subset_counts["kept"] == {"ok": 5330, "wrong_groundtruth": 102}
    assert sum(t.subset_counts["dropped"].values()) == 5700 - 5432
    assert probs[0].id == "1"  # row 0 (bad_question_clarity) is dropped; ids stay file rows
    assert sum(p.meta["corrected"] for p in probs) == 101  # one correction equals the MMLU answer
    expected = {("v1", "zeroeval"): 2803, ("v1", "ok"): 2724, ("2.0", "ok"): 5330, ("2.0", "all"): 5700,
                ("v1", "all"): 3000}
    for (version, filt), n in expected.items():
        t.configure(mmlu_redux_version=version, mmlu_redux_filter=filt)
        assert len(t.problems(data_dir)) == n, (version, filt)
    with pytest.raises(UserError, match="--mmlu-redux-filter"):
        t.configure(mmlu_redux_filter="clean")


def test_mmlu_redux_grades_against_the_corrected_answer(data_dir):
    t = get_task("mmlu_redux")
    rows = [json.loads(line) for line in (data_dir / "mmlu_redux/mmlu_redux_2.0.jsonl").open(encoding="utf-8")]
    i = next(i for i, r in enumerate(rows) if r["error_type"] == "wrong_groundtruth"
             and r["corrected_answer"] is not None and r["corrected_answer"] != r["answer"])
    p = _problem(t, data_dir, str(i))
    fixed, original = "ABCD"[rows[i]["corrected_answer"]], "ABCD"[rows[i]["answer"]]
    assert p.gold == fixed
    assert _score(t, p, f'```json\n{{"reasoning": "...", "answer": "{fixed}"}}\n```').status == CORRECT
    assert _score(t, p, f'{{"reasoning": "...", "answer": "{original}"}}').status == INCORRECT
    t.configure(mmlu_redux_filter="all")
    p = _problem(t, data_dir, str(i))
    assert p.gold == original


def test_ifeval_cnmo_drop_ceval_cluewsc_counts(data_dir):
    ife = get_task("ifeval").problems(data_dir)
    assert len(ife) == 541 and sum(len(p.gold["instruction_id_list"]) for p in ife) == 834
    assert ife[0].id == "1000"
    assert Counter(p.meta["n_instructions"] for p in ife) == {1: 305, 2: 179, 3: 57}
    cnmo = get_task("cnmo2024").problems(data_dir)
    assert len(cnmo) == 18 and [p.id for p in cnmo] == [str(i) for i in range(18)]
    assert cnmo[0].gold == "4049" and cnmo[14].gold == "10^{2^n-n-1}"
    drop = get_task("drop").problems(data_dir)
    assert len(drop) == 9536 and drop[1].gold == ["Pakistanis and Filipinos", "Pakistani and Filipino"]
    ceval = get_task("ceval").problems(data_dir)
    assert len(ceval) == 1346 and len({p.meta["subject"] for p in ceval}) == 52
    assert Counter(p.gold for p in ceval) == {"A": 310, "B": 338, "C": 344, "D": 354}
    assert ceval[0].id == "accountant/0"
    wsc = get_task("cluewsc").problems(data_dir)
    assert len(wsc) == 304 and wsc[0].id == "1" and Counter(p.gold for p in wsc) == {"A": 111, "B": 193}


def test_r1_tasks_ids(data_dir, capsys):
    assert r1_main(["tasks", "cluewsc", "--ids", "--data-dir", str(data_dir)]) == 0
    ids = capsys.readouterr().out.splitlines()
    file_order = [str(json.loads(line)["idx"]) for line in (data_dir / "cluewsc/dev.json").open(encoding="utf-8")]
    assert ids == file_order and sorted(map(int, ids)) == list(range(1, 305))
    assert r1_main(["tasks", "mmlu_pro", "--ids", "--data-dir", str(data_dir)]) == 0
    ids = capsys.readouterr().out.splitlines()
    assert len(ids) == 12032 and ids[:3] == ["70", "71", "72"]
    assert r1_main(["tasks", "mmlu_redux", "--ids", "--mmlu-redux-version", "v1", "--data-dir", str(data_dir)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2803
    assert r1_main(["tasks", "--ids"]) == 2
    assert "r1 tasks TASK --ids" in capsys.readouterr().err


# --- hand-written completions with known verdicts ---------------------------------------------------------------
def test_mmlu_pro_verdicts(data_dir):
    t = get_task("mmlu_pro")
    p = t.problems(data_dir)[0]  # gold I, nine options A-I
    assert p.gold == "I" and len(p.options) == 9
    assert _score(t, p, "<think>\nregulators...\n</think>\nThe answer is (I).").status == CORRECT
    assert _score(t, p, "Step by step... the answer is (E)").status == INCORRECT
    # J is not an option of this question: not an answer
    assert _score(t, p, "the answer is (J)").status == NO_ANSWER
    assert _score(t, p, "<think>\nthe answer is (I)", "length").status == TRUNCATED
    v = _score(t, p, "So the answer is **(I)**")
    assert (v.status, v.detail["extraction"]) == (CORRECT, "normalized")
    v = _score(t, p, "**Answer:** I")  # simple-evals' format is a fallback under MMLU-Pro's prompt
    assert (v.status, v.detail["extraction"]) == (CORRECT, "answer_is")


def test_ceval_and_cluewsc_verdicts(data_dir):
    ce = get_task("ceval")
    p = ce.problems(data_dir)[0]  # accountant/0, gold D
    assert p.gold == "D"
    text = ce.prompt(p, 0).messages[0]["content"]
    assert text.startswith("以下是中国关于注册会计师考试的单项选择题，请选出其中的正确答案。\n\n")
    assert "\nD. 税务机关按法定程序依法征税" in text and text.endswith("其中X是A、B、C、D中的一个。")
    assert _score(ce, p, "<think>\n税收法定……\n</think>\n分析：选项D错误。\n答案：D").status == CORRECT
    assert _score(ce, p, "答案：A").status == INCORRECT
    assert _score(ce, p, "我不知道").status == NO_ANSWER
    wsc = get_task("cluewsc")
    p = wsc.problems(data_dir, limit=1)[0]  # idx 1: 他们 -> 洋人, label true -> A
    assert p.gold == "A" and "此处，“他们”是否指代“洋人”？\nA. 是\nB. 否" in wsc.prompt(p, 0).messages[0]["content"]
    assert _score(wsc, p, "“他们”指的就是“洋人”。\n答案：A").status == CORRECT
    assert _score(wsc, p, "答案：B").status == INCORRECT
    assert _score(wsc, p, "答案：C").status == NO_ANSWER


def test_cnmo_verdicts(data_dir):
    t = get_task("cnmo2024")
    probs = t.problems(data_dir)
    assert _score(t, probs[0], "<think>\n2*2024+1\n</think>\nThe value is $\\boxed{4049}$.").status == CORRECT
    assert _score(t, probs[0], "\\boxed{4048}").status == INCORRECT
    assert _score(t, probs[6], "so \\boxed{\\frac{\\sqrt 6}{4}}").status == CORRECT
    assert _score(t, probs[11], "\\boxed{(-\\infty,-1)\\cup(6,+\\infty)}").status == CORRECT
    assert _score(t, probs[0], "<think>\nlog log", "length").status == TRUNCATED


def test_drop_verdicts_and_f1(data_dir):
    t = get_task("drop")
    probs = t.problems(data_dir, limit=3)
    p = probs[1]  # refs: "Pakistanis and Filipinos" | "Pakistani and Filipino"
    v = _score(t, p, "<think>\n45,000 each\n</think>\nBoth had 45,000.\nAnswer: Pakistani and Filipino")
    assert (v.status, v.detail["em"], v.detail["f1"], v.detail["fuzzy"]) == (CORRECT, 1.0, 1.0, True)
    v = _score(t, p, "Answer: Filipinos")
    assert (v.status, v.detail["em"], v.detail["f1"]) == (INCORRECT, 0.0, 0.5)  # P=1, R=1/3 against "pakistanis and filipinos" ("and" kept)
    v = _score(t, p, "Answer: the Indians")
    assert (v.status, v.detail["f1"], v.detail["fuzzy"]) == (INCORRECT, 0.0, False)
    # no "Answer:" line: simple-evals scores the whole response
    assert _score(t, p, "pakistanis and filipinos.").status == CORRECT
    assert _score(t, p, "<think>\nAnswer: Pakistani and Filipino", "length").status == TRUNCATED
    assert "0-shot" in t.extra_results([], [])["protocol_note"]
    assert t.prompt(p, 0).messages[0]["content"].endswith(
        'Think step by step, then write a line of the form "Answer: $ANSWER" at the end of your response.')


@pytest.mark.parametrize("pred,gold,em,f1", [
    ("2", "2.0", 1.0, 100.0),  # numbers compare as floats
    ("the 1990s", "1990s", 1.0, 100.0),  # articles dropped
    ("3 touchdowns", "4 touchdowns", 0.0, 0.0),  # gold number missing from the prediction: F1 0
    ("Tom Brady", "Brady", 0.0, 66.67),  # P 1/2, R 1 -> 2/3
    ("well-known fact", "well known fact", 1.0, 100.0),  # hyphens split tokens
    ("", "Brady", 0.0, 0.0),
    (["Smith", "Jones"], ["Jones", "Smith"], 1.0, 100.0),  # multi-span answers align one-to-one
    (["Smith"], ["Jones", "Smith"], 0.0, 50.0),  # one of two gold spans matched: (100 + 0) / 2
])
def test_drop_metric_table(pred, gold, em, f1):
    assert dropv.drop_metrics(pred, gold) == (em, f1)


def test_drop_summary_aggregates_f1_over_problems():
    t = get_task("drop")
    recs = [{"problem_id": "0", "verdict_detail": {"f1": 1.0, "em": 1.0, "fuzzy": True}},
            {"problem_id": "0", "verdict_detail": {"f1": 0.0, "em": 0.0, "fuzzy": False}},
            {"problem_id": "1", "verdict_detail": {"f1": 0.5, "em": 0.0, "fuzzy": True}}]
    out = t.extra_results([], recs)
    assert out["f1"] == pytest.approx(0.5) and out["em"] == pytest.approx(0.25) and out["score_fuzzy"] == 0.75
    assert out["shots"] == 0 and out["paper_shots"] == 3


def test_mmlu_redux_verdicts(data_dir):
    t = get_task("mmlu_redux")
    p = t.problems(data_dir)[1]
    g = p.gold
    wrong = next(c for c in "ABCD" if c != g)
    assert "- (A) " in t.prompt(p, 0).messages[0]["content"]
    cases = [
        (f'<think>\nhmm\n</think>\n```json\n{{\n  "reasoning": "because",\n  "answer": "{g}"\n}}\n```', CORRECT, "strict"),
        (f'{{"reasoning": "x", "answer": "({g}) something"}}', CORRECT, "strict"),
        (f'{{"reasoning": "x", "answer": "{wrong}"}}', INCORRECT, "strict"),
        (f'{{"reasoning": "x", "answer": {g}}}', CORRECT, "strict"),  # unquoted, as ZeroEval's fallback reads it
        (f"No JSON, but Answer: {g}", CORRECT, "strict"),  # simple-evals' line via the shared ladder
        (f"The correct choice is ({g}).", CORRECT, "answer_is"),
        ("I cannot tell.", NO_ANSWER, None),
    ]
    for text, status, method in cases:
        v = _score(t, p, text)
        assert (v.status, v.detail.get("extraction")) == (status, method), text


# --- end to end on the embedded model ---------------------------------------------------------------------------
@pytest.mark.slow
def test_eval_embedded_model_all_new_tasks(data_dir, tmp_path, r1):
    out = tmp_path / "run"
    r1("eval", "--task", ",".join(NEW_TASKS), "--limit", "2", "-n", "1", "--max-tokens", "24", "--seed", "0",
       "--out", str(out), "--no-progress")
    res = json.loads((out / "results.json").read_text())
    recs = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines() if line.strip()]
    assert Counter(r["task"] for r in recs) == {n: 2 for n in NEW_TASKS}
    assert all(r.get("verdict") in {CORRECT, INCORRECT, NO_ANSWER, TRUNCATED} for r in recs), \
        [(r["task"], r.get("verdict"), r.get("verdict_detail")) for r in recs]
    for n in NEW_TASKS:
        assert res["tasks"][n]["n_problems"] == 2 and 0.0 <= res["tasks"][n]["pass@1"] <= 1.0
    assert res["tasks"]["drop"]["paper_shots"] == 3 and res["tasks"]["drop"]["f1"] is not None
    assert res["tasks"]["ifeval"]["n_instructions"] == 4  # keys 1000 (3) and 1001 (1)
    assert res["tasks"]["mmlu_redux"]["subset"]["filter"] == "zeroeval"
    # --limit 2 is stratified: the two largest subjects, one question each
    assert set(res["tasks"]["ceval"]["breakdowns"]["category"]) == \
        {p.meta["category"] for p in get_task("ceval").problems(data_dir, limit=2)}
    # re-scoring the stored samples reproduces the verdicts (langdetect is seeded; no verifier state)
    before = {(r["task"], r["problem_id"]): r["verdict"] for r in recs}
    r1("score", str(out))
    again = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines() if line.strip()]
    assert {(r["task"], r["problem_id"]): r["verdict"] for r in again} == before


def test_protocol_choices_are_stated_in_results(data_dir):
    """What the paper leaves open (split, version, filter, language, shots) is written next to the number."""
    notes = {}
    for n in ("mmlu_redux", "ceval", "cluewsc", "cnmo2024", "drop"):
        t = get_task(n)
        notes[n] = t.extra_results(t.problems(data_dir), [])["protocol_note"]
    assert notes["mmlu_redux"].startswith("MMLU-Redux 2.0, filter zeroeval (5432 questions)")
    assert notes["ceval"].startswith("val split") and notes["cluewsc"].startswith("dev split")
    assert notes["cnmo2024"].startswith("English") and "0-shot" in notes["drop"]
    t = get_task("mmlu_pro")
    assert "protocol_note" not in t.extra_results([], [{"problem_id": "70", "prompt_meta": {"shots": 0}}])
    assert "5-shot" in t.extra_results([], [{"problem_id": "70", "prompt_meta": {"shots": 5}}])["protocol_note"]
