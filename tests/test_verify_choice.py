"""Multiple-choice extraction: the simple-evals pattern first, then the documented fallbacks, each one named."""
import pytest

from harness.verifiers import choice
from harness.verifiers.base import CORRECT, INCORRECT, NO_ANSWER, TRUNCATED

# (completion, letter, method): shapes seen in R1 / distilled / small-model outputs.
CASES = [
    ("Answer: B", "B", "strict"),
    ("The reaction is an SN2.\n\nAnswer: C", "C", "strict"),
    ("answer: d", "D", "strict"),
    ("Answer:\tA", "A", "strict"),
    ("ANSWER: $B$", "B", "strict"),
    ("Answer : C", "C", "strict"),
    # a reasoning summary that mentions an option before concluding: the last "Answer:" is the answer
    ("Answer: A would ignore spin.\nAnswer: D", "D", "strict"),
    # only text after </think> counts
    ("<think>\nAnswer: A? no wait.\n</think>\nAnswer: C", "C", "strict"),
    ("<think>Answer: A</think>\n\nThe answer is (B).", "B", "answer_is"),
    ("**Answer:** D", "D", "normalized"),
    ("**Answer: B**", "B", "strict"),
    ("Answer: $\\boxed{C}$", "C", "normalized"),
    ("Answer: \\text{A}", "A", "normalized"),
    ("Final Answer: $\\boxed{\\text{B}}$", "B", "normalized"),
    ("<think>\nA or C\n</think> <answer>C</answer>", "C", "answer_tag"),
    ("<answer> (B) </answer>", "B", "answer_tag"),
    ("So the result is \\boxed{C}.", "C", "boxed"),
    ("\\boxed{(A)}", "A", "boxed"),
    ("\\boxed{\\textbf{D}}", "D", "boxed"),
    ("The answer is (C).", "C", "answer_is"),
    ("Therefore, the correct option is B.", "B", "answer_is"),
    ("The final answer is: **A**", "A", "answer_is"),
    ("Answer: (D) since the pKa is lower", "D", "answer_is"),
    ("After comparing the options:\n\n**C.**", "C", "last_line"),
    ("Reasoning...\n(B)\n", "B", "last_line"),
    ("Reasoning...\nOption D", "D", "last_line"),
]

NONE_CASES = [
    "",
    "I am not sure.",
    "Answer: Both statements are true.",  # letter starts a word: not a choice
    "The answer is a bit more subtle than that.",  # lower-case article, not option A
    "Answer: E",  # outside A-D
    "<think>\nAnswer: C\n",  # think never closed: the answer was never given
    "I think it is A, but let me reconsider the mechanism",  # a letter inside prose is not an extraction
]


@pytest.mark.parametrize("text,letter,method", CASES)
def test_extraction_table(text, letter, method):
    assert choice.extract_with_method(text) == (letter, method)
    assert choice.extract(text) == letter


@pytest.mark.parametrize("text", NONE_CASES)
def test_no_extraction(text):
    assert choice.extract(text) is None


def test_simple_evals_pattern_is_verbatim():
    assert choice.SIMPLE_EVALS_PATTERN == r"(?i)Answer[ \t]*:[ \t]*\$?([A-D])\$?"


def test_verdicts():
    v = choice.verify("C", "<think>\nhmm\n</think>\nAnswer: C")
    assert (v.status, v.answer, v.key, v.detail["extraction"]) == (CORRECT, "C", "C", "strict")
    assert v.reward == 1.0
    v = choice.verify("c", "Answer: B")
    assert (v.status, v.answer, v.key) == (INCORRECT, "B", "B")
    assert choice.verify("A", "no letter here", "stop").status == NO_ANSWER
    assert choice.verify("A", "no letter here", "length").status == TRUNCATED
    # thinking cut off by the length limit: truncated, even though a letter appears inside the reasoning
    v = choice.verify("A", "<think>\nAnswer: A maybe", "length")
    assert v.status == TRUNCATED and v.answer is None and v.key is None
    # an answer given before the length limit still counts
    assert choice.verify("A", "</think>Answer: A\nMore text", "length").status == CORRECT


@pytest.mark.parametrize("bad", [None, 17, b"Answer: A", ["Answer: A"]])
def test_never_raises_on_odd_input(bad):
    assert choice.extract(bad) is None
    assert choice.verify("A", bad).status == NO_ANSWER


def test_pathological_input_is_fast():
    import time

    text = "Answer: " * 20000 + "(" * 20000 + "\\boxed{" * 5000
    t0 = time.perf_counter()
    choice.verify("A", text)
    assert time.perf_counter() - t0 < 1.0


def test_verify_many_and_summary():
    comps = ["Answer: A", "**Answer:** B", "\\boxed{C}", "nothing", "Answer: D"]
    vs = choice.verify_many(["A", "B", "C", "D", "A"], comps, ["stop"] * 5)
    assert [v.status for v in vs] == [CORRECT, CORRECT, CORRECT, NO_ANSWER, INCORRECT]
    records = [{"problem_id": f"p{i // 2}", **v.to_dict()} for i, v in enumerate(vs)]
    s = choice.extraction_summary(records)
    assert s["extraction"] == {"strict": 2, "normalized": 1, "answer_tag": 0, "boxed": 1, "answer_is": 0, "last_line": 0,
                               "none": 1}
    # p0: strict correct + normalized correct -> 0.5; p1: boxed correct + none -> 0; p2: strict incorrect -> 0
    assert s["pass@1_strict"] == pytest.approx(0.5 / 3)


def test_prompt_is_simple_evals_template():
    text = choice.format_question("Q", ["w", "x", "y", "z"])
    assert text.startswith("Answer the following multiple choice question. The last line of your response should be "
                           "of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. "
                           "Think step by step before answering.\n\nQ\n\nA) w\nB) x\nC) y\nD) z")
    with pytest.raises(ValueError):
        choice.format_question("Q", ["a", "b", "c"])


# --- ten letters (MMLU-Pro), two letters (CLUEWSC), other strict patterns -----------------------------------------
TEN = choice.LETTERS_10
CASES_10 = [
    # MMLU-Pro's own prompt asks for "the answer is (X)": that is the strict rung there
    ("Let's think step by step. ... The answer is (J).", "J", "strict"),
    ("the answer is H", "H", "strict"),
    ("So the answer is **(G)**", "G", "normalized"),
    ("Answer: E", "E", "answer_is"),  # simple-evals' format is only a fallback under the MMLU-Pro prompt
    ("\\boxed{I}", "I", "boxed"),
    ("<answer>F</answer>", "F", "answer_tag"),
    ("After all that:\n(J)", "J", "last_line"),
    ("<think>the answer is (A)</think>\nthe answer is (B)", "B", "strict"),
]


@pytest.mark.parametrize("text,letter,method", CASES_10)
def test_ten_letters_mmlu_pro(text, letter, method):
    assert choice.extract_with_method(text, TEN, "mmlu_pro") == (letter, method)


@pytest.mark.parametrize("text,letter", [("Answer: J", "J"), ("Answer: e", "E"), ("The answer is (G).", "G"),
                                         ("**Answer:** H", "H"), ("\\boxed{\\text{F}}", "F")])
def test_ten_letters_simple_evals_pattern(text, letter):
    assert choice.extract(text, TEN) == letter


def test_four_letter_behaviour_unchanged_by_the_ten_letter_mode():
    # the same texts, A-D only: letters past D are no answer, exactly as before
    assert choice.extract("Answer: E") is None
    assert choice.extract("The answer is (J).") is None
    assert choice.extract("\\boxed{G}") is None
    assert [choice.extract(t) for t, *_ in CASES] == [letter for _, letter, _ in CASES]
    # letters beyond the options shown are not answers for a question with fewer options
    assert choice.extract("the answer is (F)", "ABCDE", "mmlu_pro") is None
    assert choice.extract("the answer is (E)", "ABCDE", "mmlu_pro") == "E"


def test_ten_letter_verdicts():
    v = choice.verify("J", "<think>hmm</think>\nThe answer is (J).", "stop", TEN, "mmlu_pro")
    assert (v.status, v.answer, v.detail["extraction"]) == (CORRECT, "J", "strict")
    assert choice.verify("C", "the answer is (I)", "stop", TEN, "mmlu_pro").status == INCORRECT
    assert choice.verify("C", "<think>the answer is (C)", "length", TEN, "mmlu_pro").status == TRUNCATED
    assert choice.verify("C", "no idea", "stop", TEN, "mmlu_pro").status == NO_ANSWER


ZH_CASES = [
    ("分析如下……\n答案：C", "C", "strict"),
    ("答案: B", "B", "strict"),
    ("**答案：D**", "D", "strict"),
    ("答案：$\\boxed{A}$", "A", "normalized"),
    ("所以正确答案是C。", "C", "answer_is"),
    ("综上，选B项。", "B", "answer_is"),
    ("故选：（A）", "A", "answer_is"),
    ("Answer: D", "D", "answer_is"),
]


@pytest.mark.parametrize("text,letter,method", ZH_CASES)
def test_chinese_prompts(text, letter, method):
    assert choice.extract_with_method(text, "ABCD", "zh") == (letter, method)


def test_two_letters_cluewsc():
    assert choice.extract("答案：A", "AB", "zh") == "A"
    assert choice.extract("答案：C", "AB", "zh") is None
    assert choice.verify("B", "<think>代词指的不是它</think>\n答案：B", "stop", "AB", "zh").status == CORRECT


def test_bad_letter_range_is_a_programming_error():
    with pytest.raises(ValueError):
        choice.extract("Answer: A", "ABCDEFGHIJK")
    with pytest.raises(ValueError):
        choice.extract("Answer: A", "BCD")
    with pytest.raises(ValueError):
        choice.extract("Answer: A", "ABCD", "lm-eval")
