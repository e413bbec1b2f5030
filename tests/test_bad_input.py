"""Bad input, one table: each case exits non-zero with one line naming the file, line, field or flag, and nothing
already written changes (the run dirs it touches are hashed before and after; an --out it names is not created).

The run dir the cases aim at is a real one (the embedded model, two samples), so "nothing changes" is checked on
what a user would lose."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from conftest import run_r1


def _tree(d: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(d.rglob("*")):
        h.update(str(p.relative_to(d)).encode() + b"\0")
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("bad_input")
    run = t / "run"
    run_r1("eval", "--task", "arith", "--limit", "2", "-n", "1", "--max-tokens", "8", "--no-progress",
           "--workers", "1", "--out", str(run))
    corrupt = t / "corrupt"
    shutil.copytree(run, corrupt)
    lines = (corrupt / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 2
    (corrupt / "samples.jsonl").write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2] + "\n" + lines[0] + "\n")
    newer = t / "newer"
    shutil.copytree(run, newer)
    m = json.loads((newer / "manifest.json").read_text())
    assert m["schema_version"] == 1
    (newer / "manifest.json").write_text(json.dumps({**m, "schema_version": 99}))

    (t / "bad.jsonl").write_text('{"problem_id": "arith-1", "completions": ["a"]}\n{"problem_id": "arith-2", "comp\n')
    (t / "other_task.jsonl").write_text('{"problem_id": "2024-I-1", "completions": ["\\\\boxed{1}"]}\n')
    (t / "a_file").write_text("not a dir\n")
    (t / "train.yaml").write_text("name: x\nmodel: embedded\nbogus_key: 1\n")
    distill = Path(__file__).resolve().parent.parent / "distill" / "recipes" / "cpu_demo.yaml"
    (t / "distill.yaml").write_text(distill.read_text() + "\nbogus_key: 1\n")
    data = t / "data" / "aime2024"
    data.mkdir(parents=True)
    # AIME-shaped rows written here: the malformed-line case needs no benchmark mirror
    aops = "https://artofproblemsolving.com/wiki/index.php/2024_AIME_I_Problems/Problem_"
    rows = [json.dumps({"id": i, "problem": f"Compute {i} + {i}.", "question": f"Compute {i} + {i}.",
                        "answer": str(2 * i), "solution": "", "url": f"{aops}{i}"}) for i in range(1, 6)]
    rows[2] = '{"id": broken'
    (data / "aime24.jsonl").write_text("\n".join(rows) + "\n")
    (t / "empty").mkdir()
    return {"t": t, "run": run, "corrupt": corrupt, "newer": newer}


EVAL = ["eval", "--task", "arith", "--limit", "2", "-n", "1", "--max-tokens", "8", "--no-progress", "--workers", "1"]

# id: (argv with {t} {run} {corrupt} {newer} placeholders, substrings the error line must hold)
CASES = {
    "unknown task": (["eval", "--task", "nope", "--out", "{run}"], ["unknown task 'nope'", "arith"]),
    "unknown backend": (EVAL + ["--backend", "gpt9", "--out", "{run}"], ["unknown backend 'gpt9'"]),
    "missing model file": (EVAL + ["--model", "{t}/missing.gguf", "--out", "{run}"], ["{t}/missing.gguf"]),
    "data dir missing a file": (["eval", "--task", "math500", "--data-dir", "{t}/empty", "--out", "{run}"],
                                ["{t}/empty", "math500"]),
    "data file malformed at line 3": (["eval", "--task", "aime2024", "--data-dir", "{t}/data", "--out", "{run}"],
                                      ["{t}/data/aime2024/aime24.jsonl:3"]),
    "import malformed at line 2": (["import", "--format", "jsonl", "--task", "arith", "{t}/bad.jsonl", "--out", "{run}",
                                    "--overwrite"], ["{t}/bad.jsonl:2"]),
    "samples.jsonl corrupt at line 2": (["score", "{corrupt}"], ["{corrupt}/samples.jsonl:2"]),
    "import id of another task": (["import", "--format", "jsonl", "--task", "math500", "{t}/other_task.jsonl",
                                   "--out", "{t}/imp"], ["{t}/other_task.jsonl:1", "'2024-I-1'", "math500"]),
    "train recipe unknown key": (["train", "--recipe", "{t}/train.yaml", "--out", "{t}/train_out"],
                                 ["{t}/train.yaml", "bogus_key"]),
    "distill recipe unknown key": (["distill", "{t}/distill.yaml", "--out", "{t}/distill_out"],
                                   ["{t}/distill.yaml", "bogus_key"]),
    "-n 0": (EVAL[:5] + ["-n", "0", "--out", "{run}"], ["-n", "got 0"]),
    "-n negative": (EVAL[:5] + ["-n", "-3", "--out", "{run}"], ["-n", "got -3"]),
    "--limit 0": (["eval", "--task", "arith", "--limit", "0", "--out", "{run}"], ["--limit"]),
    "--max-tokens 0": (EVAL[:7] + ["--max-tokens", "0", "--out", "{run}"], ["--max-tokens"]),
    "--top-p 1.5": (EVAL + ["--top-p", "1.5", "--out", "{run}"], ["--top-p"]),
    "--shard out of range": (EVAL + ["--shard", "2/2", "--out", "{run}"], ["--shard", "2/2"]),
    "unwritable eval --out": (EVAL + ["--out", "{t}/a_file/run"], ["--out", "{t}/a_file"]),
    "unwritable import --out": (["import", "--format", "jsonl", "--task", "arith", "{t}/bad.jsonl", "--out",
                                 "{t}/a_file/run"], ["--out", "{t}/a_file"]),
    "unwritable report --out": (["report", "{run}", "--out", "{t}/a_file/rep"], ["--out", "{t}/a_file"]),
    "unwritable merge --out": (["merge", "{run}", "--out", "{t}/a_file/m"], ["--out", "{t}/a_file"]),
    "newer schema: score": (["score", "{newer}"], ["{newer}/manifest.json", "schema_version", "99"]),
    "newer schema: resume": (EVAL + ["--out", "{newer}"], ["{newer}/manifest.json", "schema_version"]),
    "newer schema: report": (["report", "{newer}", "--out", "{t}/rep_newer"], ["{newer}/manifest.json", "schema_version"]),
    "not a run dir": (["score", "{t}/empty"], ["{t}/empty", "not a run dir"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(env, case):
    argv, expect = CASES[case]
    fill = {k: str(v) for k, v in env.items()}
    argv = [a.format(**fill) for a in argv]
    expect = [e.format(**fill) for e in expect]
    watched = [env["run"], env["corrupt"], env["newer"]]
    before = [_tree(d) for d in watched]
    outs = [Path(argv[i + 1]) for i, a in enumerate(argv[:-1]) if a == "--out"]
    fresh = [o for o in outs if not o.exists()]

    proc = run_r1(*argv, check=False, timeout=300)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode != 0, proc.stdout
    assert len(lines) == 1 and lines[0].startswith("r1: error: "), f"expected one error line, got:\n{proc.stderr}"
    for e in expect:
        assert e in lines[0], f"{e!r} not named in: {lines[0]}"
    assert [_tree(d) for d in watched] == before, "a refused command changed a run dir"
    for o in fresh:
        assert not o.exists(), f"{o} was created by a refused command"
    leftovers = [p.name for p in env["t"].iterdir() if p.name.startswith(".")]
    assert not leftovers, f"staging files left behind: {leftovers}"
