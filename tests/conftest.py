"""Shared test setup: the real data in ../shared/data, the real embedded model, no network but loopback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_default_data = REPO.parent / "shared" / "data"
if "R1_DATA_DIR" not in os.environ and _default_data.is_dir():
    os.environ["R1_DATA_DIR"] = str(_default_data)
# Tests never reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DATA_DIR = Path(os.environ["R1_DATA_DIR"]) if os.environ.get("R1_DATA_DIR") else None


def run_r1(*args: str, cwd: Path | None = None, timeout: float = 900, env: dict | None = None,
           check: bool = True) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (as a user would)."""
    e = dict(os.environ)
    if env:
        e.update(env)
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd or REPO, capture_output=True,
                          text=True, timeout=timeout, env=e)
    if check and proc.returncode != 0:
        raise AssertionError(f"r1 {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\n"
                             f"stderr:\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if DATA_DIR is None or not DATA_DIR.is_dir():
        pytest.fail("benchmark data not found: set R1_DATA_DIR or put shared/ beside the repo")
    return DATA_DIR


@pytest.fixture(scope="session")
def r1():
    return run_r1
