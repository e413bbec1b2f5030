"""One run across machines: `r1 eval --shard I/N` on the real embedded model, then `r1 merge`, equals one run."""
import hashlib
import json
from pathlib import Path

import pytest

from conftest import run_r1, sample_records
from harness.merge import parse_shard, shard_of
from harness.errors import UserError

ARGS = ["eval", "--task", "arith", "--limit", "4", "-n", "3", "--max-tokens", "24", "--no-progress", "--workers", "1"]


_records = sample_records


def _tree_hash(d: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(d.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(d)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def test_shard_split_is_a_stable_partition():
    keys = [("aime2024", f"2024-I-{p}", i) for p in range(1, 16) for i in range(64)]
    for n in (1, 2, 3, 7):
        owners = [shard_of(*k, n) for k in keys]
        assert all(0 <= o < n for o in owners)
        if n > 1:  # every shard gets a fair share (960 keys: no shard under half its share)
            assert min(owners.count(i) for i in range(n)) > len(keys) / n / 2
    assert [shard_of(*k, 4) for k in keys] == [shard_of(*k, 4) for k in keys]
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(UserError, match="--shard"):
            parse_shard(bad)


@pytest.mark.slow
def test_two_shards_merged_equal_one_run(tmp_path):
    full, s0, s1, merged = tmp_path / "full", tmp_path / "s0", tmp_path / "s1", tmp_path / "merged"
    run_r1(*ARGS, "--out", str(full))
    run_r1(*ARGS, "--shard", "0/2", "--out", str(s0))
    out1 = run_r1(*ARGS, "--shard", "1/2", "--out", str(s1)).stdout
    assert "shard 1/2" in out1 and "r1 merge" in out1
    m0 = json.loads((s0 / "manifest.json").read_text())
    assert m0["shard"] == {"index": 0, "count": 2}

    a, b, f = _records(s0), _records(s1), _records(full)
    assert a and b and not (a.keys() & b.keys()), "shards overlap"
    assert a.keys() | b.keys() == f.keys() and len(f) == 12
    assert all(shard_of(*k, 2) == 0 for k in a) and all(shard_of(*k, 2) == 1 for k in b)

    # a shard dir is not resumed as another shard
    proc = run_r1(*ARGS, "--shard", "1/2", "--out", str(s0), check=False)
    assert proc.returncode != 0 and "shard" in proc.stderr

    # one shard alone: missing samples are named and nothing is written
    proc = run_r1("merge", str(s0), "--out", str(merged), check=False)
    assert proc.returncode != 0
    line = proc.stderr.strip().splitlines()[-1]
    assert f"{len(b)} planned samples are in none of the shards" in line and "shards 1 of 0..1 not given" in line
    assert "--allow-missing" in line and not merged.exists()

    run_r1("merge", str(s0), str(s1), "--out", str(merged))
    m = _records(merged)
    assert m.keys() == f.keys()
    for k in f:  # seeds derive from the key: the same sample, byte for byte
        assert m[k]["completion"] == f[k]["completion"] and m[k]["seed"] == f[k]["seed"], k
        assert m[k]["verdict"] == f[k]["verdict"], k
    rm = json.loads((merged / "results.json").read_text())
    rf = json.loads((full / "results.json").read_text())
    assert rm["tasks"] == rf["tasks"]
    man = rm["manifest"]
    assert "shard" not in man and [x["shard"]["index"] for x in man["merge"]["from"]] == [0, 1]
    revs = {x["git_revision"] for x in man["merge"]["from"]}  # shards of one checkout reuse their verdicts
    assert man["merge"]["missing_samples"] == 0 and man["merge"]["rescored"] is (len(revs) > 1)
    # the merged dir is an ordinary run: scoring it again changes nothing
    run_r1("score", str(merged))
    assert json.loads((merged / "results.json").read_text())["tasks"] == rf["tasks"]

    # --allow-missing writes a run that says what it lacks
    part = tmp_path / "part"
    run_r1("merge", str(s1), "--out", str(part), "--allow-missing")
    rp = json.loads((part / "results.json").read_text())
    assert rp["tasks"]["arith"]["n_samples"] == len(b)
    assert rp["manifest"]["merge"]["missing_samples"] == len(a)
    assert rp["tasks"]["arith"]["incomplete_problems"] or rp["tasks"]["arith"]["missing_problems"]

    # shards of different experiments are refused, naming the field; the shard dirs are untouched
    before = _tree_hash(s0), _tree_hash(s1)
    man1 = json.loads((s1 / "manifest.json").read_text())
    for field, value in (("seed", 7), ("generation", {**man1["generation"], "temperature": 1.0})):
        other = tmp_path / f"other_{field}"
        other.mkdir()
        for name in ("samples.jsonl", "results.json"):
            (other / name).write_bytes((s1 / name).read_bytes())
        (other / "manifest.json").write_text(json.dumps({**man1, field: value}))
        proc = run_r1("merge", str(s0), str(other), "--out", str(tmp_path / f"m_{field}"), check=False)
        assert proc.returncode != 0 and f"'{field}'" in proc.stderr.strip().splitlines()[-1]
        assert not (tmp_path / f"m_{field}").exists()
    other = tmp_path / "other_n"
    other.mkdir()
    (other / "samples.jsonl").write_bytes((s1 / "samples.jsonl").read_bytes())
    (other / "manifest.json").write_text(json.dumps({**man1, "tasks": {"arith": {**man1["tasks"]["arith"], "n": 4}}}))
    proc = run_r1("merge", str(s0), str(other), "--out", str(tmp_path / "m_n"), check=False)
    assert proc.returncode != 0 and "tasks.arith.n" in proc.stderr
    proc = run_r1("merge", str(s0), str(s0), "--out", str(tmp_path / "m_dup"), check=False)
    assert proc.returncode != 0 and "given twice" in proc.stderr
    assert (_tree_hash(s0), _tree_hash(s1)) == before
