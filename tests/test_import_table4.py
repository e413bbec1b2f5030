"""Table 4's newer tasks import through `r1 import --format jsonl` and `--format lm-eval` under their own ids.

lm-eval docs are built in the shape lm-eval's hub copies have (field names, per-subject doc_ids, DROP's query ids)
from our local data; the same completions go through both formats, so the imported ids and verdicts must agree.
Problems are taken from deep inside each set so that a row-index shortcut would land on the wrong problem.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _backend_fixtures import ScriptedServer  # noqa: E402
from test_judge import scripted_judge  # noqa: E402

from harness import judge as J  # noqa: E402
from harness.cli import main  # noqa: E402
from harness.errors import UserError  # noqa: E402
from harness.importing import import_run  # noqa: E402
from harness.task import get_task  # noqa: E402

@pytest.fixture(autouse=True)
def _no_judge_left_behind():
    """The judge-graded tasks are registry singletons: a run leaves its judge on them (see judge.detach)."""
    yield
    J.detach([get_task("simpleqa"), get_task("frames")])


STAMP = "2025-01-01T00-00-00.000001"


def _doc(task: str, p, rank: int) -> tuple[str, object, dict]:
    """(lm-eval task name, doc_id, doc) for our problem ``p``; ``rank`` is its row in lm-eval's (different) copy."""
    if task == "mmlu_pro":
        return "mmlu_pro_" + p.meta.get("category", "x").replace(" ", "_"), rank, {
            "question_id": int(p.id), "question": p.question, "options": list(p.options), "answer": p.gold}
    if task == "ifeval":
        return "ifeval", rank, {"key": int(p.id), "prompt": p.question}
    if task == "cluewsc":
        return "cluewsc", rank, {"idx": int(p.id), "text": p.question}
    if task == "ceval":
        subject, rid = p.id.split("/")
        return f"ceval-valid_{subject}", int(rid), {"id": int(rid), "question": p.question, "answer": p.gold}
    if task == "drop":
        m = re.fullmatch(r"Passage: (.*)\nQuestion: (.*)\nAnswer:", p.question, re.S)
        assert m, "our DROP context is simple-evals' Passage/Question/Answer layout"
        return "drop", rank, {"id": f"query-{rank}", "passage": m.group(1), "question": m.group(2)}
    if task == "mmlu_redux":
        return "mmlu_redux_" + p.meta["subject"], rank, {"question": p.question, "choices": list(p.options),
                                                         "subject": p.meta["subject"]}
    if task == "cnmo2024":
        return "cnmo", rank, {"question": p.question}
    if task == "simpleqa":
        return "simpleqa", rank, {"problem": p.question, "answer": p.gold}
    if task == "frames":
        return "frames", rank, {"Prompt": p.question, "Answer": p.gold}
    raise AssertionError(task)


def _completion(task: str, p) -> str:
    if task in ("mmlu_pro", "mmlu_redux", "ceval", "cluewsc"):
        return f"<think>\nok\n</think>\nThe answer is {p.gold}"
    if task == "drop":
        return f"<think>\nok\n</think>\nAnswer: {p.gold[0]}"
    if task == "cnmo2024":
        return f"<think>\nok\n</think>\n\\boxed{{{p.gold}}}"
    if task in ("simpleqa", "frames"):
        return str(p.gold)
    return "<think>\nok\n</think>\nA short reply."


TASKS = ("mmlu_pro", "mmlu_redux", "ifeval", "cnmo2024", "drop", "ceval", "cluewsc", "simpleqa", "frames")


@pytest.mark.parametrize("task", TASKS)
def test_both_formats_import_with_the_tasks_own_ids(task, tmp_path, data_dir):
    probs = get_task(task).problems(data_dir)
    picked = [probs[len(probs) // 2], probs[-1]]
    gens = tmp_path / "gens.jsonl"
    gens.write_text("".join(json.dumps({"problem_id": p.id, "completion": _completion(task, p)}) + "\n"
                            for p in picked))
    lm_dir = tmp_path / "lm"
    lm_dir.mkdir()
    for rank, p in enumerate(picked):
        lm_task, doc_id, doc = _doc(task, p, rank)
        with open(lm_dir / f"samples_{lm_task}_{STAMP}.jsonl", "a") as f:
            f.write(json.dumps({"doc_id": doc_id, "doc": doc, "target": "", "resps": [[_completion(task, p)]],
                                "filtered_resps": [""], "filter": "none", "metrics": ["acc"], "acc": 1.0}) + "\n")
    runs = {}
    for fmt, src in (("jsonl", gens), ("lm-eval", lm_dir)):
        args = ["import", "--format", fmt, "--task", task, "--model", "m", str(src), "--out", str(tmp_path / fmt),
                "--data-dir", str(data_dir)]
        if task in ("simpleqa", "frames"):
            with ScriptedServer([(200, scripted_judge, None)] * 4) as jud:
                assert main(args + ["--judge-model", "j", "--judge-base-url", jud.url]) == 0
        else:
            assert main(args) == 0
        recs = [json.loads(x) for x in (tmp_path / fmt / "samples.jsonl").read_text().splitlines()]
        runs[fmt] = {r["problem_id"]: r["verdict"] for r in recs}
    assert runs["jsonl"] == runs["lm-eval"]
    assert sorted(runs["lm-eval"]) == sorted(p.id for p in picked)
    if task not in ("ifeval",):
        assert set(runs["lm-eval"].values()) == {"correct"}, runs


def test_lm_eval_text_lookup_refuses_a_doc_not_in_our_data(tmp_path, data_dir):
    f = tmp_path / f"samples_cnmo_{STAMP}.jsonl"
    f.write_text(json.dumps({"doc_id": 0, "doc": {"question": "A question CNMO never asked"}, "target": "",
                             "resps": [["x"]]}) + "\n")
    with pytest.raises(UserError, match=r"samples_cnmo_.*:1: doc_id 0 matches no cnmo2024 question"):
        import_run("lm-eval", "cnmo2024", f, tmp_path / "run", "m", data_dir=str(data_dir))


def test_lm_eval_ceval_needs_a_subject(tmp_path, data_dir):
    f = tmp_path / f"samples_ceval-valid_{STAMP}.jsonl"
    f.write_text(json.dumps({"doc_id": 0, "doc": {"id": 0}, "target": "", "resps": [["x"]]}) + "\n")
    with pytest.raises(UserError, match="cannot tell the C-Eval subject"):
        import_run("lm-eval", "ceval", f, tmp_path / "run", "m", data_dir=str(data_dir))
