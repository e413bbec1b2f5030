"""One shared test applied to every task module: what the runner, reports, rewards and filters rely on."""
import json

import pytest

from harness.data import DataMissing
from harness.errors import UserError
from harness.task import Prompt, ScoreItem, get_task, registry, sample_seed
from harness.verifiers.base import STATUSES, Verdict

EXPECTED = {"aime2024", "aime2025", "math500", "gpqa_diamond", "mmlu", "livecodebench", "codeforces", "humaneval", "arith"}
# Table 4's rule-graded rest (issue 11)
EXPECTED |= {"mmlu_pro", "mmlu_redux", "ifeval", "cnmo2024", "drop", "ceval", "cluewsc"}
TASKS = sorted(registry())

# Completions no task may crash on: empty, unclosed think, garbage, huge, non-text-ish bytes decoded leniently.
HOSTILE = ["", "<think>\nstill thinking", "</think>", "\\boxed{", "```python\n", "\x00\udcff" * 10,
           "<think>a</think>" + "{" * 5000, "Answer: " + "Z" * 100_000]


def test_all_paper_tasks_are_registered():
    assert EXPECTED <= set(TASKS)


@pytest.mark.parametrize("name", TASKS)
def test_task_contract(name, data_dir):
    t = get_task(name)
    assert t.name == name and t.default_k >= 1
    if t.cons_k is not None:
        assert t.cons_k >= 1
    probs = t.problems(data_dir, limit=3)
    assert 1 <= len(probs) <= 3
    assert len({p.id for p in probs}) == len(probs)
    for key in t.breakdowns:
        assert all(key in p.meta for p in probs), f"breakdown key {key} missing in Problem.meta"
    p = probs[0]
    pr1 = t.prompt(p, sample_seed(0, name, p.id, 0))
    pr2 = t.prompt(p, sample_seed(0, name, p.id, 0))
    assert isinstance(pr1, Prompt) and pr1.messages == pr2.messages and pr1.meta == pr2.meta
    assert pr1.messages[-1]["role"] == "user" and pr1.messages[-1]["content"].strip()
    assert all(m["role"] != "system" for m in pr1.messages), "the paper puts every instruction in the user turn"
    json.dumps(pr1.meta)  # stored in the sample record
    # the manifest's description of the data is JSON and names the data's hashes
    json.dumps(t.describe())
    items = [ScoreItem(p, c, fr, pr1.meta) for c in HOSTILE for fr in ("stop", "length")]
    verdicts = t.score_many(items)
    assert len(verdicts) == len(items)
    for it, v in zip(items, verdicts):
        assert isinstance(v, Verdict) and v.status in STATUSES
        assert v.status != "correct"
        json.dumps(v.to_dict())
    # an unclosed think block is never an answer
    assert verdicts[2].status == "truncated" and verdicts[3].status == "truncated"


@pytest.mark.parametrize("name", [n for n in TASKS if get_task(n).files])
def test_missing_data_is_one_clear_error(name, tmp_path):
    t = get_task(name)
    with pytest.raises(UserError) as e:
        t.problems(tmp_path / "nowhere")
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "nowhere") in msg
    if t.hub is not None:
        assert t.hub.repo_id in msg


def test_csv_reader_names_file_row_and_column(tmp_path):
    """The one CSV reader of the CSV tasks (MMLU, C-Eval, GPQA, SimpleQA, FRAMES): header, short row, empty cell and
    bad encoding each a UserError naming the file and row."""
    from harness.data import iter_csv
    p = tmp_path / "a.csv"
    p.write_text("q,a\nx,1\n,2\ny\n")
    with pytest.raises(UserError, match=r"a\.csv: row 1 \(header\): missing column\(s\) b; found q, a"):
        list(iter_csv(p, required=("q", "b")))
    with pytest.raises(UserError, match=r"a\.csv: row 3: empty q"):
        list(iter_csv(p, required=("q", "a"), nonempty=("q",)))
    with pytest.raises(UserError, match=r"a\.csv: row 4: missing column\(s\) a"):
        list(iter_csv(p, required=("q", "a")))
    assert [r for _, r in iter_csv(p, header=False)] == [["q", "a"], ["x", "1"], ["", "2"], ["y"]]
    p.write_bytes(b"q,a\n\xff,1\n")
    with pytest.raises(UserError, match=r"a\.csv: not UTF-8"):
        list(iter_csv(p))
