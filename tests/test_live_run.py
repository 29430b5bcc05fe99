"""A live run is untouchable: beside a real run measuring on the host and in Docker, `bench
cleanup --dry-run` lists nothing of it, `bench cleanup --run-id` of it, its `--resume` and a new
run of its id are refused naming its pid, and the run finishes with every sample."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bench
from bench import cleanup

from conftest import ROOT, bench_cli

pytestmark = pytest.mark.integration
LIVE = f"live-{os.getpid()}"   # machine-wide names: unique per session
SECONDS = 15                   # one repetition of sysbench, long enough to act beside it


def docker_ok() -> bool:
    from bench.environments.docker import DockerEnvironment

    return DockerEnvironment.availability(DockerEnvironment.Variant())[0]


@pytest.fixture
def long_suite(config_copy: Path) -> Path:
    (config_copy / "catalogue" / "long.yaml").write_text(
        f"sysbench-long:\n  tool: sysbench\n  warmups: 0\n  params: {{threads: 1, time: {SECONDS}}}\n")
    (config_copy / "suites" / "long.yaml").write_text("repetitions: 1\nworkloads: [sysbench-long]\n")
    return config_copy


@pytest.mark.skipif(not docker_ok() and not os.environ.get("CI"), reason="dockerd is not running")
def test_cleanup_resume_and_a_second_run_leave_a_live_run_alone(long_suite, tmp_path):
    scratch = tmp_path / "scratch"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "--config-dir", str(long_suite), "run", "--suite", "long",
                             "--env", "host,docker-nat", "--out", str(tmp_path), "--run-id", LIVE,
                             "--scratch", str(scratch)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # Measuring in both: its container and volume, both scratch folders, and the host's tool
        # running in its own (the two repetitions run one after the other, in either order).
        deadline = time.monotonic() + 240
        kinds: set[str] = set()
        while not {"container", "volume", "scratch folder"} <= kinds or "process" not in kinds:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, f"the run never measured: {kinds}"
            time.sleep(0.2)
            kinds = {leftover.kind for leftover in cleanup.find(LIVE, scratch)}
        before = cleanup.find(LIVE, scratch)
        pid = str(proc.pid)

        r = bench_cli("cleanup", "--dry-run", "--scratch", str(scratch))
        assert r.returncode == 0, r.stderr
        assert not [line for line in r.stdout.splitlines() if line.endswith(f"(run {LIVE})")], r.stdout
        assert f"leaving run {LIVE} alone: it is in progress (pid {pid}, " in r.stdout

        r = bench_cli("cleanup", "--run-id", LIVE, "--scratch", str(scratch))
        assert r.returncode == 2 and f"pid {pid}" in r.stderr, r.stderr
        assert "removing" not in r.stdout

        r = bench_cli("--config-dir", str(long_suite), "run", "--out", str(tmp_path), "--resume", LIVE)
        assert r.returncode == 2 and f"pid {pid}" in r.stderr, r.stderr

        r = bench_cli("--config-dir", str(long_suite), "run", "--suite", "long", "--env", "host",
                      "--out", str(tmp_path), "--run-id", LIVE, "--scratch", str(scratch))
        assert r.returncode == 2 and f"pid {pid}" in r.stderr, r.stderr   # the same --out: whose it is

        other = tmp_path / "other"
        r = bench_cli("--config-dir", str(long_suite), "run", "--suite", "long", "--env", "host",
                      "--out", str(other), "--run-id", LIVE, "--scratch", str(scratch))
        assert r.returncode == 2 and f"pid {pid}" in r.stderr, r.stderr
        assert not (other / LIVE).exists()

        assert {(l.kind, l.name) for l in cleanup.find(LIVE, scratch)} >= {
            (l.kind, l.name) for l in before if l.kind != "process"}
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        df = bench.load(tmp_path / LIVE)
        assert set(df[df.workload == "sysbench-long"].environment) == {"host", "docker-nat"}
        assert not (tmp_path / LIVE / "failures.jsonl").exists()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)   # its own teardown removes what it made
            proc.wait(timeout=120)
        for leftover in cleanup.find(LIVE, scratch):
            leftover.remove()


def test_the_registry_tells_a_live_run_from_a_dead_one_and_prunes_the_dead(tmp_path):
    from bench import live
    from bench.store import RunStore

    alive_store = RunStore.create(tmp_path, f"{LIVE}-alive")
    alive_store.acquire()
    dead_store = RunStore.create(tmp_path, f"{LIVE}-dead")
    dead_store.acquire()
    dead_link = live.registry() / dead_store.run_id
    try:
        # a writer killed: its lock goes with it, its link stays
        os.close(dead_store._lock)
        assert live.holder(alive_store.run_id).pid == str(os.getpid())
        assert live.holder(dead_store.run_id) is None and dead_link.is_symlink()
        assert dead_store.run_id in live.prune() and not dead_link.is_symlink()
        assert live.holder(alive_store.run_id) is not None   # pruning spares the live
    finally:
        alive_store.release()
        dead_link.unlink(missing_ok=True)
    assert not (live.registry() / alive_store.run_id).is_symlink()   # released: unregistered
