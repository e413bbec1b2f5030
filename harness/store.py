"""A run directory: manifest.json, append-only samples.jsonl, scores.jsonl, results.json.

Persist first, score second. Each generated sample is appended to samples.jsonl the moment it exists (flushed,
fsynced per batch). Verdicts are appended to scores.jsonl as scoring catches up, so a crash loses at most in-flight
requests and never a finished check. When a run finishes (or on `r1 score`), the two are merged into samples.jsonl
by an atomic rewrite, so a finished run is one self-describing file of records.

Resume = skip every (task, problem_id, sample_idx) already in samples.jsonl. A torn last line (the process died
mid-write) is dropped with a warning and cut from the file so the next append starts on a clean line.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import UserError

log = logging.getLogger("r1.store")

MANIFEST = "manifest.json"
SAMPLES = "samples.jsonl"
SCORES = "scores.jsonl"
RESULTS = "results.json"
PROBLEMS = "problems.jsonl"  # problems defined by an import (gold given on the line), beside the task's dataset

# Fields that define what a run *is*: resuming with any of them changed would mix two experiments in one file.
# "shard": a shard dir resumed as another shard (or unsharded) would hold two slices under one label.
IDENTITY_FIELDS = ("model", "backend", "generation", "seed", "shard")
SCORE_FIELDS = ("verdict", "answer", "answer_key", "verdict_detail")

Key = tuple[str, str, int]

# The run dir format this code writes and understands. A manifest without it is version 1 (the first format);
# one from a newer r1-harness is refused rather than half-read. Bump it when the meaning of a stored field changes.
SCHEMA_VERSION = 1


def check_writable_dir(path: Path, flag: str) -> None:
    """Fail now, naming the flag, if ``path`` cannot become a writable directory (before any work is done)."""
    path = Path(path)
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"{flag} {path}: {probe} is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path}: {probe} is not writable")


def record_key(r: dict) -> Key:
    return (r["task"], str(r["problem_id"]), int(r["sample_idx"]))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:  # full disk: the old file stays as it was, and no half-written temp file is left
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise write_error(path, e) from e
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_jsonl_tolerant(path: Path, repair: bool = False) -> list[dict]:
    """Records of a jsonl file written by us (see ``iter_jsonl``), as a list."""
    return list(iter_jsonl(path, repair=repair))


def iter_jsonl(path: Path, repair: bool = False, offsets: bool = False) -> Iterator[Any]:
    """Stream the records of a jsonl file written by us, one line in memory at a time (``offsets``: yield
    ``(byte offset, record)``). A torn *last* line is dropped with a warning (and cut from the file when ``repair``);
    a bad line anywhere else is corruption and an error naming the line."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as f:
        offset, lineno = 0, 0
        for raw in f:
            lineno += 1
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                if f.read().strip():  # more records follow: not a torn write but a damaged file
                    raise UserError(f"{path}:{lineno}: corrupt record ({e}); the run dir is damaged") from e
                log.warning("%s: dropping torn last line %d (the previous run died mid-write)", path, lineno)
                if repair:
                    _truncate(path, start)
                return
            if not raw.endswith(b"\n") and repair:  # complete JSON but no newline: the next append needs a new line
                with open(path, "ab") as g:
                    g.write(b"\n")
            yield (start, rec) if offsets else rec


# The head of every record this project writes ({"task": ..., "problem_id": ..., "sample_idx": ..., ...}): reading
# a key from it is ~10x faster than parsing the line; any other line is parsed in full.
_KEY_HEAD = re.compile(rb'\{"task": ("(?:[^"\\]|\\.)*"), "problem_id": ("(?:[^"\\]|\\.)*"|-?\d+), "sample_idx": (\d+)[,}]')


def _iter_keys(path: Path) -> Iterator[tuple[int, str, str, int]]:
    """(byte offset, task, problem id, sample index) of each record line, with ``iter_jsonl``'s torn-line rules."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as f:
        offset = 0
        for raw in f:
            start, offset = offset, offset + len(raw)
            m = _KEY_HEAD.match(raw)
            if m and raw.endswith(b"\n"):
                try:
                    yield start, json.loads(m.group(1)), str(json.loads(m.group(2))), int(m.group(3))
                    continue
                except ValueError:
                    pass
            break  # anything unusual: the careful reader takes over from this line
        else:
            return
    for off, r in iter_jsonl(path, offsets=True):
        if off >= start:
            yield (off, *record_key(r))


class KeySet:
    """Set of sample keys in a few bits each (a bitmap of sample indices per problem): a million keys fit in
    kilobytes, where a set of tuples takes a hundred megabytes."""

    def __init__(self) -> None:
        self._bits: dict[tuple[str, str], bytearray] = {}
        self._n = 0

    def add(self, key: Key) -> bool:
        """Add ``key``; False if it was already there."""
        task, pid, idx = key
        bits = self._bits.get((task, pid))
        if bits is None:
            bits = self._bits[(task, pid)] = bytearray()
        byte, bit = divmod(int(idx), 8)
        if byte >= len(bits):
            bits.extend(bytes(byte + 1 - len(bits)))
        if bits[byte] >> bit & 1:
            return False
        bits[byte] |= 1 << bit
        self._n += 1
        return True

    def __contains__(self, key: Key) -> bool:
        bits = self._bits.get((key[0], key[1]))
        byte, bit = divmod(int(key[2]), 8)
        return bits is not None and byte < len(bits) and bool(bits[byte] >> bit & 1)

    def __len__(self) -> int:
        return self._n


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)
        f.flush()
        os.fsync(f.fileno())


def write_error(path: Path, e: OSError) -> UserError:
    """A failed write (full disk, file-size limit, quota, I/O error) as one line: the file, the cause, and that what
    was written before is kept (a torn last line is cut on resume)."""
    return UserError(f"{path}: cannot write ({e.strerror or e}); everything written before is kept: make room and "
                     f"re-run the same command to resume")


class JsonlAppender:
    def __init__(self, path: Path):
        self.path = path
        self._f = open(path, "a", encoding="utf-8")
        self._failed = False

    def write(self, records: Iterable[dict]) -> None:
        try:
            for r in records:
                self._f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
            self._f.flush()
        except OSError as e:
            self._failed = True
            raise write_error(self.path, e) from e

    def sync(self) -> None:
        try:
            self._f.flush()
            os.fsync(self._f.fileno())
        except OSError as e:
            self._failed = True
            raise write_error(self.path, e) from e

    def close(self) -> None:
        if self._f.closed:
            return
        if self._failed:  # already reported; what the disk would not take is dropped (the file is closed anyway)
            try:
                self._f.close()
            except OSError:
                pass
            return
        self.sync()
        self._f.close()


def git_revision() -> str | None:
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if rev.returncode != 0:
        return None
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for name in ("r1-harness", "numpy", "math-verify", "latex2sympy2_extended", "llama-cpp-python", "torch",
                 "transformers", "trl", "vllm", "lm-eval", "openai", "httpx"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class RunStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    # --- paths ---------------------------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def samples_path(self) -> Path:
        return self.root / SAMPLES

    @property
    def scores_path(self) -> Path:
        return self.root / SCORES

    @property
    def results_path(self) -> Path:
        return self.root / RESULTS

    @property
    def problems_path(self) -> Path:
        return self.root / PROBLEMS

    # --- manifest ------------------------------------------------------------------------------------------------
    def read_manifest(self) -> dict:
        if not self.manifest_path.exists():
            raise UserError(f"{self.root} is not a run dir: no {MANIFEST}")
        try:
            m = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise UserError(f"{self.manifest_path}: not valid JSON ({e.msg})") from e
        if not isinstance(m, dict):
            raise UserError(f"{self.manifest_path}: not a manifest (a JSON object expected)")
        v = m.get("schema_version", 1)
        if not isinstance(v, int) or v > SCHEMA_VERSION:
            raise UserError(f"{self.manifest_path}: field 'schema_version' is {v!r}, newer than this r1-harness reads "
                            f"({SCHEMA_VERSION}): upgrade r1-harness to use this run dir")
        return m

    def open_for_run(self, manifest: dict, overwrite: bool = False) -> dict:
        """Create the run dir or check that it belongs to the same experiment; returns the manifest in force."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.manifest_path.exists() and not overwrite:
            old = self.read_manifest()
            for field in IDENTITY_FIELDS:
                if _canon(old.get(field)) != _canon(manifest.get(field)):
                    raise UserError(
                        f"{self.root} holds a run with another {field} ({_short(old.get(field))} vs "
                        f"{_short(manifest.get(field))}): use another --out, or --overwrite to discard it"
                    )
            for name, t in manifest.get("tasks", {}).items():
                prev = old.get("tasks", {}).get(name)
                if prev and _canon(prev.get("data")) != _canon(t.get("data")):
                    raise UserError(
                        f"{self.root}: task {name}'s data changed since the run started (file hashes differ): "
                        f"use another --out, or --overwrite"
                    )
            merged = dict(old)
            merged_tasks = dict(old.get("tasks", {}))
            for name, t in manifest.get("tasks", {}).items():
                prev = merged_tasks.get(name, {})
                t = dict(t)
                # Asking for fewer samples or problems later must not hide the ones already generated.
                t["n"] = max(int(t.get("n", 0)), int(prev.get("n", 0)))
                if prev.get("limit") is None and prev:
                    t["limit"] = None
                elif t.get("limit") is not None and prev.get("limit") is not None:
                    t["limit"] = max(t["limit"], prev["limit"])
                merged_tasks[name] = t
            merged["tasks"] = merged_tasks
            merged["updated"] = now()
            merged["schema_version"] = SCHEMA_VERSION
            merged["resumed"] = int(old.get("resumed", 0)) + 1
            self.write_manifest(merged)
            return merged
        if overwrite:
            for p in (self.samples_path, self.scores_path, self.results_path, self.problems_path):
                if p.exists():
                    p.unlink()
            plots = self.root / "report"
            if plots.is_dir():
                shutil.rmtree(plots)
        manifest = dict(manifest)
        manifest["schema_version"] = SCHEMA_VERSION
        manifest.setdefault("created", now())
        manifest["updated"] = manifest["created"]
        manifest.setdefault("host", socket.gethostname())
        self.write_manifest(manifest)
        return manifest

    def write_manifest(self, manifest: dict) -> None:
        atomic_write_json(self.manifest_path, manifest)

    # --- records -------------------------------------------------------------------------------------------------
    def load_samples(self, repair: bool = False) -> list[dict]:
        return read_jsonl_tolerant(self.samples_path, repair=repair)

    def iter_samples(self, repair: bool = False) -> Iterator[dict]:
        return iter_jsonl(self.samples_path, repair=repair)

    def load_scores(self, repair: bool = False) -> dict[Key, dict]:
        return {record_key(r): {f: r.get(f) for f in SCORE_FIELDS}
                for r in iter_jsonl(self.scores_path, repair=repair)}

    def load_records(self, repair: bool = False) -> list[dict]:
        """Sample records with their latest verdicts merged in; duplicates (same key) keep the first generation."""
        return list(self.iter_records(repair=repair))

    def iter_records(self, repair: bool = False) -> Iterator[dict]:
        """``load_records`` streamed in file order: memory holds pending verdicts and a bitmap of keys seen."""
        scores = self.load_scores(repair=repair)
        seen = KeySet()
        for r in self.iter_samples(repair=repair):
            k = record_key(r)
            if not seen.add(k):
                continue
            s = scores.get(k)
            if s:
                r = {**r, **s}
            yield r

    def sorted_records(self) -> Iterator[dict]:
        """``load_records`` in key order (task, problem id, sample index), streamed: one pass indexes each line's
        key and byte offset in compact arrays, the second reads the lines in order (sequentially when the file is
        already sorted, as a finished run's is)."""
        import numpy as np
        from array import array

        codes: dict[tuple[str, str], int] = {}
        code_arr, idx_arr, off_arr = array("q"), array("q"), array("q")
        for off, task, pid, idx in _iter_keys(self.samples_path):
            c = codes.get((task, pid))
            if c is None:
                c = codes[(task, pid)] = len(codes)
            code_arr.append(c)
            idx_arr.append(idx)
            off_arr.append(off)
        if not off_arr:
            return
        rank = np.empty(len(codes), dtype=np.int64)
        rank[[codes[k] for k in sorted(codes)]] = np.arange(len(codes))
        prob = rank[np.frombuffer(code_arr, dtype=np.int64)]
        idx = np.frombuffer(idx_arr, dtype=np.int64)
        order = np.lexsort((idx, prob))  # stable: of two lines with one key, the first written comes first
        prob, idx = prob[order], idx[order]
        keep = np.ones(order.size, dtype=bool)
        keep[1:] = (prob[1:] != prob[:-1]) | (idx[1:] != idx[:-1])
        offsets = np.frombuffer(off_arr, dtype=np.int64)[order[keep]]
        del code_arr, idx_arr, prob, idx, order, keep, codes
        scores = self.load_scores()

        def merged(r: dict) -> dict:
            s = scores.get(record_key(r))
            return {**r, **s} if s else r

        if offsets.size == len(off_arr) and bool(np.all(np.diff(offsets) > 0)):
            for r in iter_jsonl(self.samples_path):
                yield merged(r)
            return
        with open(self.samples_path, "rb") as f:
            for off in offsets.tolist():
                f.seek(off)
                raw = f.readline()
                try:
                    rec = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as e:
                    f.seek(0)
                    lineno = f.read(off).count(b"\n") + 1
                    raise UserError(f"{self.samples_path}:{lineno}: corrupt record ({e}); the run dir is damaged") from e
                yield merged(rec)

    def replace_samples(self, records: Iterable[dict]) -> int:
        """Atomically replace samples.jsonl by ``records`` (streamed to a temp file, fsynced, renamed) and drop
        scores.jsonl, whose verdicts the records now carry. A crash before the rename leaves the old files whole."""
        tmp = self.samples_path.with_name(SAMPLES + ".tmp")
        n = 0
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                for r in records:
                    f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
                    n += 1
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:  # a full disk: the run dir stays exactly as it was, and the error names the file
            tmp.unlink(missing_ok=True)
            raise write_error(self.samples_path, e) from e
        except BaseException:  # a bad record, ^C: the run dir stays exactly as it was
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, self.samples_path)
        _fsync_dir(self.root)
        if self.scores_path.exists():
            self.scores_path.unlink()
        return n

    def samples_appender(self) -> JsonlAppender:
        return JsonlAppender(self.samples_path)

    def scores_appender(self) -> JsonlAppender:
        return JsonlAppender(self.scores_path)

    def finalize(self, records: list[dict]) -> None:
        """Fold verdicts into samples.jsonl (atomic rewrite) and drop scores.jsonl."""
        self.replace_samples(sorted(records, key=record_key))

    def write_results(self, results: dict) -> None:
        atomic_write_json(self.results_path, results)

    # --- imported problems ---------------------------------------------------------------------------------------
    def load_problem_overrides(self) -> list[dict]:
        return read_jsonl_tolerant(self.problems_path)


def _canon(x: Any) -> str:
    return json.dumps(x, sort_keys=True, default=str)


def _short(x: Any) -> str:
    s = json.dumps(x, sort_keys=True, default=str)
    return s if len(s) <= 80 else s[:77] + "..."
