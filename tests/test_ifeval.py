"""IF-Eval: our task agrees with lm-eval's own checker functions, punkt_tab comes from a package, verdicts by hand."""
import json
import random

import pytest

from harness.task import ScoreItem, get_task
from harness.verifiers import ifeval as ifv
from harness.verifiers.base import CORRECT, INCORRECT, TRUNCATED
from tasks.ifeval import ifeval_summary


def _responses(prompt: str) -> list[str]:
    """Deterministic responses that pass some instructions and fail others (every check type gets both outcomes
    somewhere in the 541 prompts)."""
    para = prompt.replace(",", "")
    return [
        prompt,
        prompt.upper(),
        prompt.lower().replace(",", ""),
        '```json\n{"answer": "' + para.replace('"', "'")[:200] + '"}\n```',
        f"<<A Title>>\n\n*{para[:60]}*\n\n***\n\n* first point\n* second point\n\n*highlighted* words [placeholder]"
        f"\n\nSECTION 1\n{para}\n\nP.S. Is there anything else I can help with?",
        "",
    ]


@pytest.fixture(scope="module")
def raw_rows(data_dir):
    with open(data_dir / "ifeval" / "input_data.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.mark.slow
def test_agreement_with_lm_eval_checkers_is_total(data_dir, raw_rows):
    """Every (prompt, response) pair: our task's four results == lm-eval's test_instruction_following_strict /
    _loose on an InputExample built straight from the raw file; and the aggregates equal lm-eval's aggregation.

    lm-eval's letter-frequency checker picks a random letter for prompts 1122 / 1129 (their letters '#', '!' are
    outside a-z), so the reference calls run under the same seeded ``random`` as ours, strict then loose, as
    process_results orders them."""
    utils = ifv.checker_utils()  # lm_eval.tasks.ifeval.utils, imported with the offline punkt_tab in place
    task = get_task("ifeval")
    problems = {p.id: p for p in task.problems(data_dir)}
    records, lm = [], {"ps": [], "pl": [], "is": [], "il": []}
    agree = total = 0
    for row in raw_rows:
        inp = utils.InputExample(key=row["key"], instruction_id_list=row["instruction_id_list"], prompt=row["prompt"],
                                 kwargs=row["kwargs"])
        p = problems[str(row["key"])]
        for resp in _responses(row["prompt"]):
            random.seed(ifv.rng_seed(row))
            strict = utils.test_instruction_following_strict(inp, resp)
            loose = utils.test_instruction_following_loose(inp, resp)
            expect = (strict.follow_all_instructions, strict.follow_instruction_list, loose.follow_all_instructions,
                      loose.follow_instruction_list)
            # ours sees an R1-shaped completion: only the text after </think> is graded
            v = task.score(ScoreItem(p, "<think>\nplanning the answer\n</think>" + resp, "stop", {}))
            d = v.detail
            got = (d["prompt_level_strict_acc"], d["inst_level_strict_acc"], d["prompt_level_loose_acc"],
                   d["inst_level_loose_acc"])
            total += 1
            agree += got == expect and v.status == (CORRECT if expect[0] else INCORRECT)
            records.append({"problem_id": p.id, "verdict": v.status, **v.to_dict()})
            lm["ps"].append(strict.follow_all_instructions)
            lm["pl"].append(loose.follow_all_instructions)
            lm["is"].append(strict.follow_instruction_list)
            lm["il"].append(loose.follow_instruction_list)
    assert total == 541 * 6
    assert agree == total, f"agreement {agree}/{total}"
    # both outcomes occur, so agreement is not agreement on a constant
    assert 0 < sum(lm["ps"]) < total and 0 < sum(lm["pl"]) < total
    # aggregation: one sample per (prompt, response family) -> compare family by family
    for fam in range(6):
        recs = [r for i, r in enumerate(records) if i % 6 == fam]
        s = ifeval_summary(list(problems.values()), recs)
        idx = range(fam, total, 6)
        assert s["prompt_level_strict"] == pytest.approx(sum(lm["ps"][i] for i in idx) / 541)
        assert s["prompt_level_loose"] == pytest.approx(sum(lm["pl"][i] for i in idx) / 541)
        assert s["inst_level_strict"] == pytest.approx(utils.agg_inst_level_acc([lm["is"][i] for i in idx]))
        assert s["inst_level_loose"] == pytest.approx(utils.agg_inst_level_acc([lm["il"][i] for i in idx]))
        assert s["n_instructions"] == 834


def test_punkt_tab_is_built_from_the_package_not_downloaded(tmp_path):
    from nltk.tabdata import PunktDecoder
    from punkt.data import load_bundled

    root = ifv.build_punkt_tab(tmp_path)
    lang_dir = root / "tokenizers" / "punkt_tab" / "english"
    assert sorted(f.name for f in lang_dir.iterdir()) == sorted(ifv.PUNKT_FILES)
    dec = PunktDecoder()  # NLTK's own reader of punkt_tab files (load_punkt_params uses it)

    def read(name, how):
        with open(lang_dir / name, encoding="utf-8") as f:
            return how(f)

    ref = load_bundled("english")
    assert read("abbrev_types.txt", dec.txt2set) == ref.abbrev_types
    assert read("sent_starters.txt", dec.txt2set) == ref.sent_starters
    assert set(read("collocations.tab", dec.tab2tups)) == ref.collocations
    assert dict(read("ortho_context.tab", dec.tab2intdict)) == dict(ref.ortho_context)
    assert len(ref.abbrev_types) > 100 and len(ref.ortho_context) > 10000
    assert ifv.build_punkt_tab(tmp_path) == root  # second call: already there, left alone


def test_sentence_counts_match_the_packaged_punkt_tokenizer():
    import punkt

    utils = ifv.checker_utils()
    from lm_eval.tasks.ifeval import instructions_util

    assert utils is not None
    texts = ["Mr. Smith went to Washington. He arrived at 3 p.m. on Jan. 5 and met Dr. Jones.",
             "The U.S. economy grew. Prices rose! Did wages follow? Some did.",
             "One sentence only", "e.g. this is not a split. But this is."]
    for t in texts:
        assert instructions_util.count_sentences(t) == len(punkt.sent_tokenize(t)), t
    assert instructions_util.count_sentences(texts[0]) == 2


def _doc(data_dir, key):
    return next(p for p in get_task("ifeval").problems(data_dir) if p.id == str(key))


@pytest.mark.parametrize("key,response,strict,loose", [
    (1051, "hi sam,\nplease go and vote on tuesday. it matters.\nlove, kim", True, True),  # all lowercase
    (1051, "Hi Sam, please vote.", False, False),
    (1220, "Roses in a cup\nTwo strangers look up\nIs there anything else I can help with?", True, True),
    (1220, "A poem.\nIs there anything else I can help with?\n**", False, True),  # loose drops the last line
    (1094, '```json\n{"moms": ["Marge", "Lois", "Peggy", "Molly", "Morticia"]}\n```', True, True),
    (1094, 'Here you go: {"moms": []}', False, False),
    (2225, "제방은 흙으로 쌓은 둑이고, 둑은 강물이 넘치지 않도록 막아 주는 구조물입니다.", True, True),  # Korean
    (2225, "A levee is a natural or artificial embankment along a river.", False, False),
])
def test_hand_written_responses(data_dir, key, response, strict, loose):
    p = _doc(data_dir, key)
    v = get_task("ifeval").score(ScoreItem(p, response, "stop", {}))
    assert (v.detail["prompt_level_strict_acc"], v.detail["prompt_level_loose_acc"]) == (strict, loose)
    assert v.status == (CORRECT if strict else INCORRECT)


def test_unclosed_think_is_truncated_and_k_samples_average(data_dir):
    task = get_task("ifeval")
    p = _doc(data_dir, 1051)
    assert task.score(ScoreItem(p, "<think>\nall lowercase, ok", "length", {})).status == TRUNCATED
    letter = "dear sam,\nplease go and vote on tuesday. every single vote matters in this election.\nlove, kim"
    good = task.score(ScoreItem(p, "<think>x</think>" + letter, "stop", {}))
    bad = task.score(ScoreItem(p, "<think>x</think>" + letter.title(), "stop", {}))
    recs = [{"problem_id": p.id, **v.to_dict()} for v in (good, bad, bad, bad)]
    s = ifeval_summary([p], recs)
    assert s["prompt_level_strict"] == 0.25 and s["inst_level_strict"] == 0.25 and s["n_instructions"] == 1
    assert s["instruction_types"]["change_case:english_lowercase"] == {"strict": 0.25, "n": 1}
