"""What the benchmarks share: a private configuration folder, running the bench CLI, medians."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BENCH = [sys.executable, "-m", "bench"]


def private_config(suites: dict[str, list[str]], catalogue: dict[str, dict] | None = None,
                   repetitions: int = 1) -> Path:
    """A copy of the checkout's workloads/ (BENCH_CONFIG_DIR) with extra suites and catalogue
    entries: the benchmarks never add anything to the real configuration."""
    root = Path(tempfile.mkdtemp(prefix="bench-benchmarks-config-"))
    shutil.copytree(REPO / "workloads", root, dirs_exist_ok=True)
    for name, workloads in suites.items():
        (root / "suites" / f"{name}.yaml").write_text(yaml.safe_dump(
            {"description": f"benchmarks/: {name}", "profile": "quick", "repetitions": repetitions,
             "workloads": workloads}))
    if catalogue:
        (root / "catalogue" / "zz-benchmarks.yaml").write_text(yaml.safe_dump(catalogue))
    return root


def bench_run(config: Path, suite: str, env: str, out: Path, *extra: str, timeout: float = 900) -> tuple[Path, float]:
    """`bench run` in a child process; returns the run folder and the wall time seen from outside."""
    run_id = f"{suite}-{env}-{time.time_ns()}"
    argv = [*BENCH, "run", "--suite", suite, "--env", env, "--out", str(out), "--run-id", run_id, *extra]
    start = time.perf_counter()
    r = subprocess.run(argv, env={**os.environ, "BENCH_CONFIG_DIR": str(config)}, capture_output=True,
                       text=True, timeout=timeout)
    wall = time.perf_counter() - start
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"bench run --suite {suite} --env {env} failed ({r.returncode}): {' | '.join(tail)}")
    return out / run_id, wall


def samples(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines() if line.strip()]


def manifest(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def ci_running() -> bool:
    """Is the lead's CI (a checkout named ci-main) using this machine? Said in the results."""
    import psutil

    mine = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    for p in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            if p.info["pid"] not in mine and ("ci-main" in " ".join(p.info["cmdline"] or [])
                                              or "ci-main" in (p.info["cwd"] or "")):
                return True
        except (psutil.Error, TypeError):
            continue
    return False
