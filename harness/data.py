"""Dataset loading: a local mirror laid out like ../shared/data, or the Hugging Face hub as a fallback.

Every task names its hub dataset id + revision and its local file(s). The local mirror is found through
``--data-dir`` or ``R1_DATA_DIR``; tests and CI only ever use local files.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from . import hub as hf_hub
from .errors import DataMissing, UserError

ENV_VAR = "R1_DATA_DIR"


@dataclass(frozen=True)
class HubSource:
    """Where the upstream copy of a task's data lives (used only when no local mirror has the file)."""

    repo_id: str
    revision: str = "main"
    split: str = "test"
    config: str | None = None

    def describe(self) -> str:
        return f"{self.repo_id}@{self.revision}" + (f" ({self.config}/{self.split})" if self.config else f" ({self.split})")


def default_mirror_dir() -> Path:
    """Where `r1 data fetch` / `make data` put the mirror when no --out is given; used when nothing else is set."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "r1-harness" / "data"


def data_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """--data-dir, else R1_DATA_DIR, else the mirror `make data` wrote (if it exists), else None (the hub)."""
    d = explicit or os.environ.get(ENV_VAR)
    if d:
        return Path(d).expanduser()
    fetched = default_mirror_dir()
    return fetched if fetched.is_dir() else None


def resolve(relpath: str, hub: HubSource | None = None, explicit_dir: str | os.PathLike | None = None) -> Path:
    """Path of a local data file, or DataMissing naming the path looked at and the hub id."""
    base = data_dir(explicit_dir)
    hub_txt = f"; upstream: {hub.describe()}" if hub else ""
    if base is None:
        raise DataMissing(
            f"no data directory for {relpath}: run `r1 data fetch` (or `make data`), or pass --data-dir / set "
            f"{ENV_VAR} to a local mirror laid out like shared/data{hub_txt}"
        )
    path = base / relpath
    if not path.exists():
        raise DataMissing(f"missing data file {path}{hub_txt}; `r1 data fetch --out {base}` fills it")
    return path


def hub_rows(hub: HubSource) -> list[dict[str, Any]]:
    """Rows of the hub dataset via `datasets` (only when no local mirror is configured and the hub is reachable)."""
    from . import hub as hf_hub

    if hf_hub.offline(datasets=True):
        raise DataMissing(f"hub is offline (HF_HUB_OFFLINE=1) and no local copy of {hub.describe()}: use --data-dir")
    try:
        import datasets  # noqa: PLC0415 - heavy, optional
    except ImportError as e:
        raise DataMissing(f"no local copy of {hub.describe()} and the `datasets` package is not installed: use --data-dir") from e
    why = hf_hub.unreachable()
    if why:
        raise DataMissing(f"{why}, so {hub.describe()} cannot come from the hub, and no local mirror was found: pass "
                          f"--data-dir or set {ENV_VAR} (`r1 data fetch` / `make data` writes one)")
    try:
        ds = datasets.load_dataset(hub.repo_id, hub.config, revision=hub.revision, split=hub.split)
    except Exception as e:  # network errors differ by version; one line for the user
        raise DataMissing(f"could not load {hub.describe()} from the hub ({type(e).__name__}); use --data-dir") from e
    return [dict(r) for r in ds]


def json_lines(path: Path, what: str = "a JSON object") -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON-lines file; a bad line is a UserError naming it."""
    try:
        f = open(path, "rb")  # decoded per line, so a bad byte is reported with its line number
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from e
    with f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise UserError(f"{path}:{lineno}: not UTF-8 text") from e
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{path}:{lineno}: not valid JSON ({e.msg})") from e
            if not isinstance(obj, dict):
                raise UserError(f"{path}:{lineno}: expected {what}, got {type(obj).__name__}")
            yield lineno, obj


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [obj for _, obj in json_lines(path)]


def iter_csv(path: Path, header: bool = True, required: tuple[str, ...] = (),
             nonempty: tuple[str, ...] = ()) -> Iterator[tuple[int, dict[str, str] | list[str]]]:
    """(row number as a spreadsheet shows it, row) pairs; quoted newlines handled by the csv module.

    With a header, ``required`` columns must be present in every row and ``nonempty`` ones must hold more than
    whitespace; either failure, and a file that is not UTF-8, is a UserError naming the file and row."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            if not header:
                yield from enumerate(csv.reader(f), 1)
                return
            reader = csv.DictReader(f)
            absent = [c for c in required if c not in (reader.fieldnames or ())]
            if absent:
                raise UserError(f"{path}: row 1 (header): missing column(s) {', '.join(absent)}; "
                                f"found {', '.join(reader.fieldnames or ()) or 'none'}")
            for i, row in enumerate(reader, 2):
                missing = [c for c in required if row.get(c) is None]
                if missing:
                    raise UserError(f"{path}: row {i}: missing column(s) {', '.join(missing)}")
                empty = [c for c in nonempty if not (row.get(c) or "").strip()]
                if empty:
                    raise UserError(f"{path}: row {i}: empty {' and '.join(empty)}")
                yield i, row
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason})") from e


def subject_dir(task: str, dir_rel: str, map_rel: str, hub: HubSource | None, explicit_dir, suffix: str,
                read_map: Callable[[Path], dict], read_subject: Callable[[Path, str, Any], list]) -> tuple[list, dict]:
    """Problems of a one-CSV-per-subject layout (MMLU, C-Eval): ``dir_rel/<subject><suffix>`` in subject order, each
    subject looked up in the map file at ``map_rel``; and the manifest's {source: sha256} for both. The layout is the
    mirror's (the hub has one config per subject and no category map), so without a mirror it is a UserError."""
    if data_dir(explicit_dir) is None and not hf_hub.offline():
        raise UserError(f"task {task} needs the local mirror ({dir_rel}, {map_rel}): pass --data-dir or set "
                        f"{ENV_VAR}; upstream: {hub.describe() if hub else 'none'}")
    map_path = resolve(map_rel, hub, explicit_dir)
    dir_path = resolve(dir_rel, hub, explicit_dir)
    mapping = read_map(map_path)
    files = sorted(dir_path.glob(f"*{suffix}"))
    if not files:
        raise UserError(f"{dir_path}: no *{suffix} files")
    digest = hashlib.sha256()
    problems: list = []
    for path in files:
        subject = path.name[: -len(suffix)]
        if subject not in mapping:
            raise UserError(f"{path}: subject {subject!r} has no entry in {map_path}")
        digest.update(f"{path.name}:{file_sha256(path)}\n".encode())
        problems.extend(read_subject(path, subject, mapping[subject]))
    return problems, {dir_rel: digest.hexdigest(), map_rel: file_sha256(map_path)}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_rows(relpath: str, hub: HubSource | None, explicit_dir=None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Rows of a jsonl data file (local mirror first, hub second) and a {source: sha256} record for the manifest."""
    base = data_dir(explicit_dir)
    if base is None and hub is not None and not hf_hub.offline():
        rows = hub_rows(hub)
        digest = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
        return rows, {hub.describe(): digest}
    path = resolve(relpath, hub, explicit_dir)
    return read_jsonl(path), {relpath: file_sha256(path)}
