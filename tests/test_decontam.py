"""Decontamination (training/decontam.py): open-r1's 8-gram rule on normalised text, exact text for short problems,
id matches, the benchmark index cached by data hash, the refusal to train on an evaluated benchmark. GPQA rows are
checked by counts and ids only: its text is never printed (assertions compare booleans and numbers)."""
from __future__ import annotations

import json
import shutil

import pytest

from harness.errors import UserError
from harness.task import get_task
from training import decontam as dc


def _q(task: str, i: int = 0) -> tuple[str, str]:
    p = get_task(task).problems()[i]
    return p.id, p.question


def test_normalisation_and_ngrams():
    assert dc.normalize("  The  Sum\n of\tTWO ") == "the sum of two"
    assert dc.word_ngrams("a b c d", 3) == {"a b c", "b c d"}
    assert dc.word_ngrams("a b", 3) == set()


def test_eight_word_overlap_drops_seven_does_not():
    _, q = _q("math500", 10)
    words = q.split()
    assert len(words) >= 12
    eight = "Unrelated preface text here. " + " ".join(words[2:10]) + " and then something else entirely"
    seven = "Unrelated preface text here. " + " ".join(words[2:9]) + " and then something else entirely"
    shouty = "  ".join(w.upper() for w in words)  # case and whitespace do not hide a copy
    rows = [{"id": "a", "problem": eight}, {"id": "b", "problem": seven}, {"id": "c", "problem": shouty}]
    kept, rep = dc.decontaminate(rows, tasks=["math500"])
    assert [r["id"] for r in kept] == ["b"]
    assert rep["by_benchmark"] == {"math500": 2} and rep["by_match"] == {"ngram": 2}
    assert rep["dropped_ids"] == ["a", "c"] and rep["ngram"] == 8
    kept7, _ = dc.decontaminate(rows, n=7, tasks=["math500"])
    assert kept7 == []  # n is a parameter (open-r1's --ngram_size)


def test_short_problems_ids_and_records():
    arith_id, arith_q = _q("arith", 6)  # "Compute a op b." (2 terms): fewer than 8 words, matched as whole text
    math_id, _ = _q("math500", 0)
    aime_id, _ = _q("aime2024", 0)
    rows = [{"id": "r1", "problem": arith_q.lower()},
            {"id": aime_id, "problem": "an unrelated question about the number of apples in seven baskets"},
            {"task": "math500", "problem_id": math_id},  # a teacher record: no text stored, the task's is used
            {"id": "7", "problem": "another unrelated question about the number of pears in nine baskets"},
            {"task": "arith", "problem_id": "999999"}]  # an id the task does not have
    kept, rep = dc.decontaminate(rows, tasks=["arith", "aime2024", "math500"])
    assert [r.get("id") or r.get("problem_id") for r in kept] == ["7", "999999"]  # bare row indices never match
    assert rep["by_benchmark"] == {"aime2024": 1, "arith": 1, "math500": 1}
    assert rep["by_match"] == {"exact_text": 1, "id": 2}
    kept, rep = dc.decontaminate(rows, tasks=["arith", "aime2024", "math500"], exclude_tasks=["arith"])
    assert len(kept) == 3 and rep["excluded"] == ["arith"] and "arith" not in rep["benchmarks"]
    with pytest.raises(UserError, match="unknown benchmark"):
        dc.decontaminate(rows, tasks=["arith"], exclude_tasks=["nope"])


def test_every_benchmark_is_checked_and_gpqa_stays_private():
    from harness.task import registry

    gid, gq = _q("gpqa_diamond", 3)
    rows = [{"id": "g", "problem": "Consider this: " + gq}, {"id": "clean", "problem": "a b c d e f g h i j"}]
    kept, rep = dc.decontaminate(rows)
    assert [r["id"] for r in kept] == ["clean"]
    assert rep["by_benchmark"] == {"gpqa_diamond": 1}
    benchmarks = {n for n, t in registry().items() if not getattr(t, "from_dataset", False)}
    assert set(rep["benchmarks"]) | set(rep["unchecked"]) == benchmarks  # every task, or named as unchecked
    text = json.dumps(rep)
    leaked = any(g in text for g in dc.word_ngrams(gq, 4))
    assert not leaked  # the report carries counts and ids, never benchmark text


def test_index_is_cached_by_data_hash(tmp_path, monkeypatch, data_dir):
    monkeypatch.setenv("R1_CACHE_DIR", str(tmp_path / "cache"))
    mirror = tmp_path / "data"
    shutil.copytree(data_dir / "aime2024", mirror / "aime2024")
    dc._MEMO.clear()
    first = dc.benchmark_index(tasks=["aime2024"], data_dir=mirror)
    assert not first.cached and len(list((tmp_path / "cache" / "decontam").glob("index-*.pkl"))) == 1
    dc._MEMO.clear()
    dc._LOADED.clear()
    again = dc.benchmark_index(tasks=["aime2024"], data_dir=mirror)
    assert again.cached and again.key == first.key and again.ngrams == first.ngrams
    # a changed data file is a new index, never a stale one
    f = next((mirror / "aime2024").glob("*.jsonl"))
    lines = f.read_text().splitlines()
    row = json.loads(lines[0])
    row["problem"] = "A brand new problem statement about eleven red marbles and three blue marbles in a jar."
    f.write_text("\n".join([json.dumps(row)] + lines[1:]) + "\n")
    dc._MEMO.clear()
    dc._LOADED.clear()
    changed = dc.benchmark_index(tasks=["aime2024"], data_dir=mirror)
    assert changed.key != first.key and not changed.cached
    kept, _ = dc.decontaminate([{"id": "x", "problem": row["problem"]}], index=changed)
    assert kept == []


def test_missing_benchmark_data_is_named_not_skipped(tmp_path):
    dc._LOADED.clear()
    idx = dc.benchmark_index(tasks=["aime2024", "arith"], data_dir=tmp_path / "empty", cache=False)
    assert idx.tasks == ["arith"] and "aime2024" in idx.unchecked
    _, rep = dc.decontaminate([{"id": "x", "problem": "y"}], index=idx)
    assert "aime2024" in rep["unchecked"]


def test_train_on_eval_refused_unless_allowed():
    with pytest.raises(UserError) as e:
        dc.check_train_on_eval({"math500": "grpo.task"}, ["aime2024", "math500"], allow=False)
    assert "grpo.task=math500" in str(e.value) and "allow_train_on_eval" in str(e.value)
    dc.check_train_on_eval({"math500": "grpo.task"}, ["math500"], allow=True)
    dc.check_train_on_eval({"arith": "grpo.task"}, ["math500"], allow=False)
