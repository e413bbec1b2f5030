"""One run across machines: `r1 eval --shard I/N` and `r1 merge`.

A shard owns the sample keys (task, problem id, sample index) whose stable hash falls in its slice. The hash does not
depend on N's other shards, on the run seed or on progress, and each sample's seed derives from its key, so the N
shards together generate exactly the samples, byte for byte, of one unsharded run. ``merge_runs`` joins their run
dirs into one run dir after checking that they are slices of the same experiment.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from .errors import UserError
from .store import KeySet, RunStore, atomic_write_text, now, record_key

JUDGMENTS_FILE = "judgments.jsonl"  # harness.judge.JUDGMENTS (not imported: judge pulls in an HTTP client)

log = logging.getLogger("r1.merge")

# Manifest fields that must agree for shards to be slices of one experiment (per-task settings are checked apart).
AGREE_FIELDS = ("model", "backend", "generation", "seed", "source", "paper_stage", "judge")
TASK_FIELDS = ("n", "limit", "data", "options")


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' -> (I, N) with 0 <= I < N (SLURM's $SLURM_ARRAY_TASK_ID with --array=0-(N-1))."""
    try:
        i, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise UserError(f"--shard {text!r}: expected I/N, e.g. 0/4 (shard I of N, counted from 0)") from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {text!r}: need N >= 1 and 0 <= I < N (shards are counted from 0)")
    return i, n


def shard_of(task: str, problem_id: str, sample_idx: int, count: int) -> int:
    h = hashlib.sha256(f"{task}\x1f{problem_id}\x1f{int(sample_idx)}".encode()).digest()
    return int.from_bytes(h[:8], "little") % count


def in_shard(key: tuple[str, str, int], shard: tuple[int, int] | None) -> bool:
    return shard is None or shard_of(key[0], key[1], key[2], shard[1]) == shard[0]


def _canon(x: Any) -> str:
    return json.dumps(x, sort_keys=True, default=str)


def _model_identity(m: dict) -> Any:
    """The weights, not where they lie: a GGUF's sha256 when known (paths differ between machines)."""
    info = m.get("model_info") or {}
    return info.get("sha256")


def check_agree(dirs: list[Path], manifests: list[dict]) -> None:
    first, d0 = manifests[0], dirs[0]
    for d, m in zip(dirs[1:], manifests[1:]):
        for f in AGREE_FIELDS:
            if _canon(m.get(f)) != _canon(first.get(f)):
                raise UserError(f"{d}: manifest field {f!r} differs from {d0}'s ({_short(m.get(f))} vs "
                                f"{_short(first.get(f))}): not a shard of the same run")
        a, b = _model_identity(first), _model_identity(m)
        if a and b and a != b:
            raise UserError(f"{d}: manifest field 'model_info.sha256' differs from {d0}'s: other weights")
        ta, tb = first.get("tasks") or {}, m.get("tasks") or {}
        if sorted(ta) != sorted(tb):
            raise UserError(f"{d}: manifest field 'tasks' differs from {d0}'s ({', '.join(sorted(tb))} vs "
                            f"{', '.join(sorted(ta))})")
        for name in ta:
            for f in TASK_FIELDS:
                if _canon(ta[name].get(f)) != _canon(tb[name].get(f)):
                    what = "data hashes" if f == "data" else f
                    raise UserError(f"{d}: manifest field 'tasks.{name}.{f}' differs from {d0}'s ({what}: "
                                    f"{_short(tb[name].get(f))} vs {_short(ta[name].get(f))})")
    counts = {(m.get("shard") or {}).get("count") for m in manifests}
    if len(counts) > 1:
        raise UserError(f"shard counts differ ({', '.join(str(c) for c in sorted(counts, key=str))}): "
                        f"merge the shards of one --shard I/N split")
    seen: dict[int, Path] = {}
    for d, m in zip(dirs, manifests):
        sh = m.get("shard")
        if sh is None:
            continue
        if sh["index"] in seen:
            raise UserError(f"{d}: shard {sh['index']}/{sh['count']} given twice (also {seen[sh['index']]})")
        seen[sh["index"]] = d


def _short(x: Any) -> str:
    s = _canon(x)
    return s if len(s) <= 80 else s[:77] + "..."


def merge_runs(dirs: list[Path], out: Path, allow_missing: bool = False, data_dir: str | None = None) -> dict:
    """Join shard run dirs into ``out``; returns the merged results (see ``harness.runner.score_run``).

    Refuses (naming the field) shards of different experiments, and (unless ``allow_missing``) a merge that would
    leave planned samples missing. Nothing is written before every check passed; a key present in several shards is
    kept once (the first dir's). Verdicts are reused when all shards ran the same code and package versions, else
    every sample is re-scored here."""
    from .runner import configure_task, planned_problems, score_run
    from .task import get_task

    dirs = [Path(d) for d in dirs]
    out = Path(out)
    if not dirs:
        raise UserError("r1 merge: give the shard run dirs to merge")
    for d in dirs:
        if d.resolve() == out.resolve():
            raise UserError(f"--out {out} is one of the shard dirs: merge into a new dir")
    if (out / "manifest.json").exists():
        raise UserError(f"--out {out} already holds a run: use another --out")
    manifests = [RunStore(d).read_manifest() for d in dirs]
    check_agree(dirs, manifests)
    base = manifests[0]
    data_dir = data_dir or base.get("data_dir")

    # What a complete run holds: every planned problem x n samples of every task.
    present = KeySet()
    for d in dirs:
        for r in RunStore(d).iter_records():
            present.add(record_key(r))
    missing: dict[str, list[tuple[str, int]]] = {}
    n_missing = 0
    ref = RunStore(dirs[0])
    for name, tman in (base.get("tasks") or {}).items():
        task = get_task(name)
        configure_task(task, tman.get("options") or {})
        for p in planned_problems(task, {**tman, "source": base.get("source")}, ref, data_dir):
            for i in range(int(tman.get("n", 1))):
                if (name, p.id, i) not in present:
                    n_missing += 1
                    if len(missing.setdefault(name, [])) < 5:
                        missing[name].append((p.id, i))
    count = (base.get("shard") or {}).get("count")
    absent = sorted(set(range(count)) - {m["shard"]["index"] for m in manifests if m.get("shard")}) if count else []
    if n_missing:
        where = "; ".join(f"{t}: " + ", ".join(f"{pid}#{i}" for pid, i in ks) for t, ks in missing.items())
        msg = (f"{n_missing} planned samples are in none of the shards (first: {where})"
               + (f"; shards {', '.join(map(str, absent))} of 0..{count - 1} not given" if absent else ""))
        if not allow_missing:
            raise UserError(msg + ": finish those shards (re-run their r1 eval), or pass --allow-missing")
        log.warning("%s: merged anyway (--allow-missing); results.json marks the incomplete problems", msg)

    out.mkdir(parents=True, exist_ok=True)
    store = RunStore(out)
    seen = KeySet()

    def union():
        for d in dirs:
            for r in RunStore(d).iter_records():
                if seen.add(record_key(r)):
                    yield r

    store.replace_samples(union())
    for extra in (RunStore(dirs[0]).problems_path,):
        if extra.exists():
            shutil.copyfile(extra, store.root / extra.name)
    judgments = [Path(d) / JUDGMENTS_FILE for d in dirs if (Path(d) / JUDGMENTS_FILE).exists()]
    if judgments:
        lines: dict[str, None] = {}
        for j in judgments:
            for line in j.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    lines.setdefault(line, None)
        atomic_write_text(store.root / JUDGMENTS_FILE, "".join(line + "\n" for line in lines))

    same_code = len({_canon([m.get("git_revision"), m.get("versions")]) for m in manifests}) == 1
    manifest = {k: v for k, v in base.items() if k not in ("shard", "backend_stats", "resumed", "updated")}
    stats: dict = {}
    from .runner import _add_counts

    for m in manifests:
        if m.get("backend_stats"):
            stats = _add_counts(stats, m["backend_stats"])
    if stats:
        manifest["backend_stats"] = stats
    manifest["created"] = manifest["updated"] = now()
    manifest["merge"] = {
        "from": [{"dir": str(Path(d).resolve()), "shard": m.get("shard"), "host": m.get("host"),
                  "created": m.get("created"), "git_revision": m.get("git_revision")} for d, m in zip(dirs, manifests)],
        "missing_samples": n_missing,
        "rescored": not same_code,
    }
    store.write_manifest(manifest)
    return score_run(out, data_dir=data_dir, rescore=not same_code, manifest=manifest)
