from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def recorded(*parts: str) -> str:
    """An output recorded from the real tool on a Debian 12 machine (see tests/data/README.md)."""
    return DATA.joinpath(*parts).read_text()


def bench_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real command line in a child process, as a user would."""
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    """A private copy of workloads/ that a test may break."""
    dest = tmp_path / "workloads"
    shutil.copytree(ROOT / "workloads", dest)
    return dest
