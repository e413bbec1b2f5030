import json

import pytest

from harness.errors import UserError
from harness.store import RunStore
from harness.task import sample_seed


def _manifest(**over):
    m = {"model": "embedded", "backend": "llamacpp", "generation": {"temperature": 0.6, "top_p": 0.95},
         "seed": 0, "tasks": {"arith": {"n": 2, "limit": 3, "data": {"x": 1}}}}
    m.update(over)
    return m


def test_torn_last_line_is_dropped_and_cut(tmp_path, caplog):
    s = RunStore(tmp_path)
    s.open_for_run(_manifest())
    app = s.samples_appender()
    app.write([{"task": "arith", "problem_id": "a", "sample_idx": 0}, {"task": "arith", "problem_id": "a", "sample_idx": 1}])
    app.close()
    with open(s.samples_path, "a") as f:
        f.write('{"task": "arith", "problem_id": "b", "sam')
    recs = s.load_samples(repair=True)
    assert [r["sample_idx"] for r in recs] == [0, 1]
    assert "torn" in caplog.text
    # the file is clean again: a new append starts on its own line
    app = s.samples_appender()
    app.write([{"task": "arith", "problem_id": "b", "sample_idx": 0}])
    app.close()
    assert len(s.load_samples()) == 3
    assert all(json.loads(line) for line in s.samples_path.read_text().splitlines())


def test_corrupt_middle_line_is_an_error(tmp_path):
    s = RunStore(tmp_path)
    s.open_for_run(_manifest())
    s.samples_path.write_text('{"task": "arith", "problem_id": "a", "sample_idx": 0}\nnot json\n{"task": "arith", "problem_id": "a", "sample_idx": 1}\n')
    with pytest.raises(UserError, match=r"samples.jsonl:2"):
        s.load_samples()


def test_manifest_mismatch_refused_unless_overwrite(tmp_path):
    s = RunStore(tmp_path)
    s.open_for_run(_manifest())
    (tmp_path / "samples.jsonl").write_text('{"task": "arith", "problem_id": "a", "sample_idx": 0}\n')
    with pytest.raises(UserError, match="another model"):
        s.open_for_run(_manifest(model="other.gguf"))
    with pytest.raises(UserError, match="another generation"):
        s.open_for_run(_manifest(generation={"temperature": 1.0, "top_p": 0.95}))
    with pytest.raises(UserError, match="data changed"):
        s.open_for_run(_manifest(tasks={"arith": {"n": 2, "limit": 3, "data": {"x": 2}}}))
    # nothing already written was lost by the refusals
    assert len(s.load_samples()) == 1
    s.open_for_run(_manifest(model="other.gguf"), overwrite=True)
    assert s.load_samples() == []
    assert s.read_manifest()["model"] == "other.gguf"


def test_resume_merges_task_settings_upwards(tmp_path):
    s = RunStore(tmp_path)
    s.open_for_run(_manifest())
    m = s.open_for_run(_manifest(tasks={"arith": {"n": 1, "limit": 5, "data": {"x": 1}},
                                        "aime2024": {"n": 64, "limit": None, "data": {}}}))
    assert m["tasks"]["arith"] == {"n": 2, "limit": 5, "data": {"x": 1}}
    assert "aime2024" in m["tasks"] and m["resumed"] == 1


def test_sample_seed_is_a_pure_function_of_identity():
    a = sample_seed(0, "aime2024", "2024-I-1", 3)
    assert a == sample_seed(0, "aime2024", "2024-I-1", 3)
    assert len({a, sample_seed(1, "aime2024", "2024-I-1", 3), sample_seed(0, "aime2024", "2024-I-1", 4),
                sample_seed(0, "aime2025", "2024-I-1", 3)}) == 4
    assert 0 <= a < 2**31


def test_sorted_records_streams_in_key_order_first_generation_wins(tmp_path):
    s = RunStore(tmp_path)
    s.open_for_run(_manifest())
    recs = [{"task": "arith", "problem_id": p, "sample_idx": i, "completion": f"{p}{i}"}
            for p, i in [("b", 1), ("a", 10), ("a", 2), ("b", 0), ("a", 2)]]
    recs[-1]["completion"] = "a duplicate written later"
    recs.insert(2, {"problem_id": "c", "task": "arith", "sample_idx": 0, "completion": "keys in another order"})
    app = s.samples_appender()
    app.write(recs)
    app.close()
    with open(s.scores_path, "w") as f:
        f.write(json.dumps({"task": "arith", "problem_id": "a", "sample_idx": 2, "verdict": "correct"}) + "\n")
    out = list(s.sorted_records())
    assert [(r["problem_id"], r["sample_idx"]) for r in out] == [("a", 2), ("a", 10), ("b", 0), ("b", 1), ("c", 0)]
    assert out[0]["completion"] == "a2" and out[0]["verdict"] == "correct" and "verdict" not in out[1]
    assert sorted(map(json.dumps, out)) == sorted(map(json.dumps, s.load_records()))
    assert s.replace_samples(out) == 5 and not s.scores_path.exists()
    assert [(r["problem_id"], r["sample_idx"]) for r in s.iter_samples()] == [(r["problem_id"], r["sample_idx"]) for r in out]


def test_keyset_is_a_set_of_sample_keys():
    from harness.store import KeySet

    ks = KeySet()
    assert ks.add(("t", "p", 0)) and ks.add(("t", "p", 1000)) and ks.add(("u", "p", 0))
    assert not ks.add(("t", "p", 1000))
    assert ("t", "p", 1000) in ks and ("t", "p", 999) not in ks and ("t", "q", 0) not in ks and len(ks) == 3


def test_streamed_aggregation_equals_the_list_one(data_dir):
    """aggregate_task over a list, over a re-iterable, and from a pre-filled tally give the same results."""
    import random

    from harness.runner import aggregate_task
    from harness.tally import TaskTally
    from harness.task import get_task

    task = get_task("math500")
    problems = task.problems(data_dir, 30)
    rng = random.Random(0)
    recs = []
    for p in problems[:-2]:  # two planned problems without samples, one problem short of samples
        for i in range(8 if p is not problems[0] else 5):
            v = rng.choice(["correct", "incorrect", "no_answer", "truncated"])
            recs.append({"task": "math500", "problem_id": p.id, "sample_idx": i, "verdict": v,
                         "answer_key": None if v == "no_answer" else rng.choice(["1", "2", "3"]),
                         "completion_tokens": rng.randint(1, 99), "finish_reason": "stop", "completion": "x",
                         "verdict_detail": {"by": "boxed"}})
    rng.shuffle(recs)
    a = aggregate_task(task, problems, recs, 8)

    class Again:
        def __iter__(self):
            return iter(list(recs))

    b = aggregate_task(task, problems, Again(), 8)
    c = aggregate_task(task, problems, recs, 8, tally=TaskTally(problems).add_all(recs))
    assert a == b == c
    assert a["n_samples"] == len(recs) and len(a["missing_problems"]) == 2 and a["incomplete_problems"] == [problems[0].id]
    assert set(a["pass@k"]) == {str(k) for k in range(1, 9)} and a["pass@k_excluded_problems"]["8"] == 1
    assert a["answer_extraction"] == {"boxed": len(recs)}
    from collections import Counter

    from harness import metrics

    n, c = Counter(), Counter()
    for r in recs:
        n[r["problem_id"]] += 1
        c[r["problem_id"]] += r["verdict"] == "correct"
    counts = [(n[p.id], c[p.id]) for p in problems if n[p.id]]
    for k in range(1, 9):  # the vectorised curve equals the per-k estimator
        assert a["pass@k"][str(k)] == pytest.approx(metrics.pass_at_k_over(counts, k).value, abs=1e-12)


def test_score_run_feeds_task_extras_that_walk_records_twice(tmp_path, data_dir):
    """MMLU's extra_results makes two passes over its records (extraction, then accuracy): the first is fed while the
    run is folded, the second re-reads the new file; both must see every record."""
    from harness.importing import import_run
    from harness.runner import aggregate_task, planned_problems
    from harness.task import get_task

    task = get_task("mmlu")
    probs = task.problems(data_dir, 40)
    src = tmp_path / "gen.jsonl"
    with open(src, "w") as f:
        for j, p in enumerate(probs):
            comps = [f"The answer is ({'ABCD'[(j + i) % 4]})" for i in range(3)] + ["no idea"]
            f.write(json.dumps({"problem_id": p.id, "completions": comps}) + "\n")
    import harness.runner as runner

    old_batch = runner.SCORE_BATCH
    runner.SCORE_BATCH = 7  # many batches through the feed
    try:
        res = import_run("jsonl", "mmlu", src, tmp_path / "run", "m", data_dir=str(data_dir))["tasks"]["mmlu"]
    finally:
        runner.SCORE_BATCH = old_batch
    store = RunStore(tmp_path / "run")
    recs = store.load_records()
    tman = {**store.read_manifest()["tasks"]["mmlu"], "source": "import"}
    want = aggregate_task(task, planned_problems(task, tman, store, str(data_dir)), recs, 4)
    assert res["extraction"] == want["extraction"] and sum(res["extraction"].values()) == 160
    assert res["accuracy"] == want["accuracy"] and res["accuracy"]
    assert res == want


def test_compact_vote_equals_metrics_cons_at_k():
    """The tally's vote over interned key ids decides exactly as metrics.cons_at_k over the keys (ties included)."""
    import random

    import numpy as np

    from harness.metrics import cons_at_k
    from harness.tally import cons_at_k_ids

    rng = random.Random(0)
    for _ in range(3000):
        n = rng.randint(1, 30)
        keys = [rng.choice([None, "a", "b", "c", "d", "e"]) for _ in range(n)]
        ok = [rng.random() < 0.3 for _ in range(n)]
        ids: dict = {}
        kid = np.array([-1 if k is None else ids.setdefault(k, len(ids)) for k in keys])
        k = rng.randint(1, n)
        assert cons_at_k(keys, ok, k) == cons_at_k_ids(np.array(ok), kid, k), (keys, ok, k)
