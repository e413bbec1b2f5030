"""Shared test setup: the real data in ../shared/data, the real embedded model, no network but loopback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.data import default_mirror_dir
from harness.errors import DataMissing

REPO = Path(__file__).resolve().parent.parent
_default_data = REPO.parent / "shared" / "data"
# Set by the user or CI: the mirror is promised, so a test that cannot find a benchmark file fails (CI cannot hide a
# hole). Without it and without ../shared beside the repo (a clone found on a code host), such tests are skipped.
DATA_PROMISED = bool(os.environ.get("R1_DATA_DIR"))
if "R1_DATA_DIR" not in os.environ and _default_data.is_dir():
    os.environ["R1_DATA_DIR"] = str(_default_data)
if "R1_DATA_DIR" not in os.environ and default_mirror_dir().is_dir():  # the mirror `make data` wrote
    os.environ["R1_DATA_DIR"] = str(default_mirror_dir())
# Tests never reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DATA_DIR = Path(os.environ["R1_DATA_DIR"]) if os.environ.get("R1_DATA_DIR") else None


def run_r1(*args: str, cwd: Path | None = None, timeout: float = 900, env: dict | None = None,
           check: bool = True) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (as a user would); ``env`` entries set to None are unset."""
    e = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd or REPO, capture_output=True,
                          text=True, timeout=timeout, env=e)
    if check and proc.returncode != 0:
        missing = _data_missing_line(proc.stderr)
        if missing:
            raise DataMissing(missing)
        raise AssertionError(f"r1 {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\n"
                             f"stderr:\n{proc.stderr[-3000:]}")
    return proc


def sample_records(run: Path) -> dict:
    """A run dir's samples by (task, problem_id, sample_idx), failing on a duplicate key (blank lines skipped)."""
    import json

    out: dict = {}
    path = run / "samples.jsonl"
    for line in (path.read_bytes().split(b"\n") if path.exists() else []):
        if not line.strip():
            continue
        r = json.loads(line)
        key = (r["task"], r["problem_id"], r["sample_idx"])
        assert key not in out, f"duplicate sample {key}"
        out[key] = r
    return out


@pytest.fixture
def restore_task_registry():
    """Datasets registered as tasks in a test leave the shared task registry as they found it."""
    from harness.task import registry

    before = set(registry())
    yield
    for name in set(registry()) - before:
        registry().pop(name, None)


def data_file(relpath: str) -> Path:
    """A file (or folder) of the benchmark mirror; DataMissing when absent (a skip without a mirror, else a failure)."""
    if DATA_DIR is None:
        raise DataMissing(f"no data directory for {relpath} (no benchmark data mirror)")
    path = DATA_DIR / relpath
    if not path.exists():
        raise DataMissing(f"missing data file {path}")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if DATA_DIR is None or not DATA_DIR.is_dir():
        if DATA_PROMISED:
            pytest.fail(f"R1_DATA_DIR={os.environ['R1_DATA_DIR']} is not a directory")
        pytest.skip(f"{DATA_SKIP} (no benchmark data mirror){DATA_HOW}")
    return DATA_DIR


@pytest.fixture(scope="session")
def r1():
    return run_r1


# --- benchmark data: skipped on a clone without a mirror, a failure where one was promised -----------------------
DATA_SKIP = "needs benchmark data"
DATA_HOW = "; get it with `make data` (or `r1 data fetch`) or point R1_DATA_DIR at a mirror laid out like shared/data"
# The one-line errors of harness.data (DataMissing) as the CLI prints them.
_DATA_MISSING_MARKERS = ("missing data file", "no data directory for", "hub is offline", "no local copy of",
                         "from the hub (")


def _data_missing_line(stderr: str) -> str | None:
    for line in stderr.splitlines():
        if line.startswith("r1: error:") and any(m in line for m in _DATA_MISSING_MARKERS):
            return line.removeprefix("r1: error:").strip()
    return None


def _is_data_missing(excinfo) -> bool:
    return excinfo is not None and excinfo.errisinstance(DataMissing)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if DATA_DIR is not None or DATA_PROMISED or rep.outcome != "failed" or not _is_data_missing(call.excinfo):
        return
    msg = str(call.excinfo.value).splitlines()[0]
    rep.outcome = "skipped"
    rep.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {DATA_SKIP}: {msg}{DATA_HOW}")


def _data_skips(terminalreporter) -> list:
    return [r for r in terminalreporter.stats.get("skipped", [])
            if isinstance(r.longrepr, tuple) and DATA_SKIP in str(r.longrepr[2])]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    n = len(_data_skips(terminalreporter))
    if n:
        terminalreporter.write_sep("=", f"{n} tests skipped for benchmark data (no mirror){DATA_HOW}", yellow=True)


def pytest_sessionfinish(session, exitstatus):
    # Belt and braces for CI: with a promised mirror no test may skip for want of data.
    rep = session.config.pluginmanager.get_plugin("terminalreporter")
    if DATA_PROMISED and rep is not None and _data_skips(rep) and session.exitstatus == 0:
        session.exitstatus = 1
