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
