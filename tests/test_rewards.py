"""GRPO rewards equal the verifiers' verdicts (one copy of each verifier), and the format / language tables."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from harness.task import get_task  # noqa: E402
from harness.verifiers import choice as choicev  # noqa: E402
from harness.verifiers import code as codev  # noqa: E402
from harness.verifiers import math as mathv  # noqa: E402
from harness.verifiers.format import format_ok, format_reward, tag_score  # noqa: E402
from harness.verifiers.language import is_mixed_language, language_consistency, words  # noqa: E402
from training.rewards import REWARDS, completion_text, finish_reasons, make_reward, make_rewards  # noqa: E402

# ------------------------------------------------------------------------------------------------ format table
FORMAT_CASES = [
    # completion, prefix, r1_zero, think
    ("<think>2+2 is 4</think><answer>4</answer>", None, True, True),
    ("<think>\n2+2 is 4\n</think>\n<answer>\n4\n</answer>\n", None, True, True),
    ("2+2 is 4\n</think>\n<answer>4</answer>", "<think>\n", True, True),  # the prompt forced "<think>\n"
    ("<think>\n2+2 is 4\n</think>\n<answer>4</answer>", "<think>\n", True, True),  # model repeated the prefix
    ("2+2 is 4\n</think>\n<answer>4</answer>", None, False, False),  # no prefix given: the open tag is missing
    ("<think>2+2</think><answer>4</answer> and more", None, False, True),  # trailing text
    ("<think></think><answer>4</answer>", None, False, True),  # empty reasoning
    ("<think>x</think><answer> </answer>", None, False, True),  # empty answer
    ("<think>x</think><answer>4</answer><answer>5</answer>", None, False, True),  # two answers
    ("<think>x<think>y</think><answer>4</answer>", None, False, False),  # nested think
    ("<think>x</think>The answer is \\boxed{4}.", None, False, True),  # the released R1 layout
    ("<think>x</think>   ", None, False, False),  # think then nothing
    ("<think>never closed", None, False, False),
    ("<answer>4</answer>", None, False, False),
    ("", None, False, False),
    (None, None, False, False),
    (b"<think>x</think><answer>4</answer>", None, False, False),  # not a string
]


@pytest.mark.parametrize("completion,prefix,r1,think", FORMAT_CASES)
def test_format_table(completion, prefix, r1, think):
    assert format_ok(completion, "r1_zero", prefix) is r1
    assert format_ok(completion, "think", prefix) is think
    assert format_reward(completion, "r1_zero", prefix) == (1.0 if r1 else 0.0)


def test_format_unknown_template():
    with pytest.raises(ValueError):
        format_ok("x", "xml")


@pytest.mark.parametrize("completion,prefix,score", [
    ("<think>a</think><answer>4</answer>", None, 1.0),
    ("a</think><answer>4</answer>", "<think>\n", 1.0),
    ("a</think><answer>4</answer>", None, 0.75),
    ("<think>a</think> 4", None, 0.5),
    ("</answer><answer>", None, 0.25),  # out of order: only the first counts
    ("nothing", None, 0.0),
    (None, None, 0.0),
])
def test_tag_score(completion, prefix, score):
    assert tag_score(completion, prefix) == score


# ---------------------------------------------------------------------------------------------- language table
LANGUAGE_CASES = [
    # text, target, consistency
    ("Let x be 3, so 2x = 6.", "en", 1.0),
    ("Let $\\alpha = \\pi$ and α+β = 1", "en", 1.0),  # Greek letters are math, LaTeX commands are Latin
    ("我们先计算 then add", "en", 2 / 7),  # 5 Han characters = 5 words
    ("我们先计算 then add", "zh", 5 / 7),
    ("Пусть x = 1", "ru", 0.5),
    ("café naïve", "fr", 1.0),  # accented letters stay in their word
    ("カタカナと漢字", "ja", 1.0),
    ("12 + 34 = 46 !", "en", 0.0),  # no words at all
    ("", "en", 0.0),
    (None, "en", 0.0),
]


@pytest.mark.parametrize("text,target,value", LANGUAGE_CASES)
def test_language_consistency_table(text, target, value):
    assert language_consistency(text, target) == pytest.approx(value)


def test_words_and_mixed():
    assert [w for _, w in words("Hello, 世界!")] == ["Hello", "世", "界"]
    assert is_mixed_language("So we get 答案 is 4", "en")
    assert not is_mixed_language("So we get the answer 4", "en")
    assert not is_mixed_language("1 + 1 = 2", "en")  # no words: nothing to call mixed
    assert not is_mixed_language("So we get 答案 is 4", "en", threshold=0.5)
    with pytest.raises(ValueError):
        language_consistency("x", "klingon")


# ------------------------------------------------------------------------------------- rewards == verifiers
MATH_CASES = [  # (gold, completion): real shapes from arith / MATH-500 generations
    ("7", "<think>\n3+4=7\n</think>\n<answer>7</answer>"),
    ("7", "<think>3+4</think><answer>8</answer>"),
    ("\\frac{1}{2}", "<think>half</think><answer>0.5</answer>"),
    ("\\frac{1}{2}", "So the answer is $\\boxed{\\dfrac12}$."),
    ("(3, \\frac{\\pi}{2})", "Thus $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$"),
    ("10", "<think>I keep thinking and never close"),
    ("-121", "Compute: 12 * -10 - 1 = -121. \\boxed{-121}"),
    ("6", "I have no idea."),
    ("x^2+2x+1", "<think>expand</think><answer>(x+1)^2</answer>"),
]


def test_accuracy_equals_math_verifier():
    golds = [g for g, _ in MATH_CASES]
    comps = [c for _, c in MATH_CASES]
    want = [v.reward for v in mathv.verify_many(golds, comps, keys=False)]
    assert want.count(1.0) >= 4 and want.count(0.0) >= 3  # the table has both outcomes
    acc = make_reward("accuracy")
    assert acc(["p"] * len(comps), comps, gold=golds, kind=["math"] * len(comps)) == want
    # conversational completions (chat prompts): same rewards
    chat = [[{"role": "assistant", "content": c}] for c in comps]
    assert acc(["p"] * len(comps), chat, gold=golds) == want


def test_accuracy_equals_task_score_on_arith():
    from harness.task import ScoreItem

    task = get_task("arith")
    probs = task.problems(limit=4)
    comps = [f"<think>ok</think><answer>{p.gold}</answer>" if i % 2 == 0 else f"\\boxed{{{int(p.gold) + 1}}}"
             for i, p in enumerate(probs)]
    want = [v.reward for v in task.score_many([ScoreItem(p, c, "stop", {}) for p, c in zip(probs, comps)])]
    assert want == [1.0, 0.0, 1.0, 0.0]
    got = make_reward("accuracy")([""] * 4, comps, gold=[p.gold for p in probs], kind=["math"] * 4)
    assert got == want


def test_accuracy_length_cutoff_matches_eval():
    """A completion that used the whole budget without EOS is ``length``: a stray number is not an answer."""
    comp = "Let me compute 3 + 4 which gives 7 and then"
    acc = make_reward("accuracy", max_completion_length=5, eos_ids={0})
    assert acc(["p"], [comp], completion_ids=[[5, 6, 7, 8, 9]], gold=["7"]) == [
        mathv.verify("7", comp, "length").reward]
    assert acc(["p"], [comp], completion_ids=[[5, 6, 0]], gold=["7"]) == [mathv.verify("7", comp, "stop").reward]
    assert finish_reasons(2, [[1, 2], [1, 0]], 2, {0}) == ["length", "stop"]
    assert finish_reasons(1, None, 2) == [None]


def test_accuracy_equals_choice_verifier():
    comps = ["<think>B seems right</think>\nAnswer: B", "Answer: C", "I think it is (A).", "<think>no end"]
    golds = ["B", "B", "A", "A"]
    want = [v.reward for v in choicev.verify_many(golds, comps)]
    got = make_reward("accuracy")([""] * 4, comps, gold=golds, kind=["choice"] * 4)
    assert got == want and want[0] == 1.0 and want[1] == 0.0


def test_accuracy_equals_code_verifier():
    tests = [{"input": "2 3\n", "output": "5\n"}, {"input": "10 -4\n", "output": "6\n"}]
    comps = [
        "<think>read two ints</think>\n```python\na, b = map(int, input().split())\nprint(a + b)\n```",
        "```python\na, b = map(int, input().split())\nprint(a - b)\n```",
        "no code here",
    ]
    want = [v.reward for v in codev.score_many([codev.CodeJob(c, tests) for c in comps])]
    assert want == [1.0, 0.0, 0.0]
    got = make_reward("accuracy")([""] * 3, comps, gold=[None] * 3, kind=["code"] * 3, tests=[tests] * 3,
                                  mode=["stdin"] * 3, func_name=[None] * 3)
    assert got == want


def test_format_language_rewards_and_registry():
    comps = ["two plus two\n</think>\n<answer>4</answer>", "<think>二加二</think><answer>4</answer>", "4"]
    fmt_r = make_reward("format", prefix="<think>\n")
    assert fmt_r([""] * 3, comps) == [format_reward(c, "r1_zero", "<think>\n") for c in comps] == [1.0, 1.0, 0.0]
    lang = make_reward("language", prefix="<think>\n")
    assert lang([""] * 3, comps) == [1.0, 0.0, 0.0]  # the CoT only; "4" has no words
    assert make_reward("tags")([""], ["<think>a</think>"]) == [0.5]
    fns = make_rewards(REWARDS)
    assert [f.__name__ for f in fns] == list(REWARDS)
    with pytest.raises(ValueError):
        make_reward("helpfulness")
    with pytest.raises(ValueError):
        make_reward("accuracy")([""], ["x"], gold=["1"], kind=["poetry"])


def test_completion_text_shapes():
    assert completion_text("abc") == "abc"
    assert completion_text([{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]) == "ab"
    assert completion_text({"role": "assistant", "content": "x"}) == "x"
    assert completion_text(None) == ""


def test_custom_reward_by_import_path():
    fn = make_reward("harness.verifiers.format:format_reward")
    assert fn.__name__ == "format_reward"
    with pytest.raises(ValueError, match="cannot import"):
        make_reward("no.such.module:fn")


# ------------------------------------------------------------------------- evaluation's semantics (issue 10 item 3)
def _eval_reward(gold: str, completion: str, finish_reason: str, prefix: str | None) -> float:
    """What `r1 eval` pays: the runner stores prefix + generated text and the task scores that."""
    from harness.task import Problem, ScoreItem

    text = (prefix or "") + completion if prefix and not completion.startswith(prefix) else completion
    return get_task("arith").score_many([ScoreItem(Problem("x", gold), text, finish_reason, {})])[0].reward


PREFIX = "<think>\n"
HACKS = [
    # (case, completion as TRL hands it: the prompt ended with the prefix, finish_reason, token count of 6 = limit)
    ("never closes <think>: the boxed answer sits in unfinished reasoning",
     "7 is the answer so \\boxed{7}", "stop", 0.0),
    ("never closes <think>, cut at the length limit", "3 + 4 = 7 so \\boxed{7} and", "length", 0.0),
    ("answer only inside the reasoning", "3 + 4 = \\boxed{7}\n</think>\nI am done.", "stop", 0.0),
    ("cut at the length limit without an answer", "3 + 4 makes\n</think>\nThe result is", "length", 0.0),
    ("closed think, boxed answer", "3 + 4 = 7\n</think>\nSo \\boxed{7}.", "stop", 1.0),
    ("closed think, answer present although the budget ran out", "3 + 4 = 7\n</think>\n\\boxed{7}", "length", 1.0),
    ("closed think, wrong answer", "3 + 4 = 8\n</think>\n\\boxed{8}", "stop", 0.0),
]


@pytest.mark.parametrize("case,completion,reason,want", HACKS, ids=[h[0] for h in HACKS])
def test_accuracy_sees_what_evaluation_sees(case, completion, reason, want):
    """The accuracy reward restores the forced "<think>\\n" before verifying, like the evaluation: the reward equals
    the eval's verdict on every case, including the hack "never close <think>" (which used to be paid)."""
    acc = make_reward("accuracy", prefix=PREFIX, max_completion_length=6, eos_ids={0})
    ids = [1] * 6 if reason == "length" else [1, 2, 0]
    got = acc(["p"], [completion], completion_ids=[ids], gold=["7"])
    assert got == [want] == [_eval_reward("7", completion, reason, PREFIX)]
    chat = acc(["p"], [[{"role": "assistant", "content": completion}]], completion_ids=[ids], gold=["7"])
    assert chat == got


def test_never_close_think_was_the_hack():
    """Without the prefix restored the same text reads as a plain answer and is paid: the bug this guards."""
    comp = "7 is the answer so \\boxed{7}"
    assert make_reward("accuracy", prefix=None)(["p"], [comp], gold=["7"]) == [1.0]
    assert make_reward("accuracy", prefix=PREFIX)(["p"], [comp], gold=["7"]) == [0.0]


def test_stage_default_rewards_include_language():
    from training.rewards import default_rewards

    assert default_rewards(None, "r1_zero") == ["accuracy", "format"]  # R1-Zero: rule rewards only
    assert default_rewards("grpo", "chat") == ["accuracy", "format_think", "language"]  # R1 stage 2 [R1 2.3.2]
    assert "language" in default_rewards("grpo_all", "r1_zero")
    assert [f.__name__ for f in make_rewards(None)] == ["accuracy", "format"]
    lang = make_reward("language", prefix=PREFIX)
    assert lang(["p"] * 2, ["The sum is seven.\n</think>\n7", "和是七 the sum\n</think>\n7"])[0] == 1.0


def test_reward_model_is_a_sequence_classifier(tmp_path):
    """``model:PATH`` loads any HF sequence-classification model (a tiny one built here from a config)."""
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, num_labels=1, pad_token_id=0)
    LlamaForSequenceClassification(cfg).save_pretrained(tmp_path / "rm")
    rm = make_reward(f"model:{tmp_path / 'rm'}")
    assert isinstance(rm, torch.nn.Module) and rm.config.num_labels == 1
    with torch.no_grad():
        out = rm(input_ids=torch.tensor([[1, 2, 3]])).logits
    assert out.shape == (1, 1)
    with pytest.raises(ValueError, match="sequence-classification"):
        make_reward(f"model:{tmp_path / 'missing'}")
