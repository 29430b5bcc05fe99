"""SIGKILL a real run at several points, check what it left, resume it, check nothing is lost
or leaked and the cells are those of an uninterrupted run. Host, Docker and a TCG guest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import bench
from bench import cleanup
from bench.store import effective_status, read_manifest

from conftest import ROOT, bench_cli, tools_of

pytestmark = pytest.mark.integration
VM_KILLED = f"vm-killed-{os.getpid()}"  # machine-wide names: unique per session
DOCKER_KILLED = f"docker-killed-{os.getpid()}"  # machine-wide names: unique per session

TOOL_PROCESSES = {"fio", "sysbench", "netserver", "netperf", "mpirun", "hpcc"}
REPS = 3
WORKLOADS = ["sysbench-tiny", "fio-tiny", "netperf-tiny"]


@pytest.fixture
def tiny(config_copy: Path) -> Path:
    """A suite of short workloads, one of each kind that needs no MPI, with one warm-up."""
    (config_copy / "catalogue" / "tiny.yaml").write_text(
        "sysbench-tiny:\n  tool: sysbench\n  warmups: 1\n  params: {threads: 1, time: 1}\n"
        "fio-tiny:\n  tool: fio\n  warmups: 0\n  params: {rw: randread, bs: 4k, size: 16M, runtime: 1}\n"
        "netperf-tiny:\n  tool: netperf\n  warmups: 0\n  params: {length: 1}\n")
    (config_copy / "suites" / "tiny.yaml").write_text(f"repetitions: {REPS}\nworkloads: {WORKLOADS}\n")
    return config_copy


def tool_pids(out: Path) -> dict[int, str]:
    """The tools the run writing to `out` started (start() gives it out/scratch)."""
    return tools_of(out / "scratch", TOOL_PROCESSES)


def describe(pids: set[int]) -> list[str]:
    found = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            found.append(f"{pid} (parent {p.ppid()}): {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            pass
    return found


def leftover_tools(out: Path) -> list[str]:
    """The run's tools still alive; a moment's grace for ones just ending."""
    for _ in range(20):
        alive = describe(tool_pids(out))
        if not alive:
            return []
        time.sleep(0.1)
    return alive


def sample_lines(run: Path) -> int:
    try:
        return (run / "samples.jsonl").read_text().count("\n")
    except FileNotFoundError:
        return 0


def start(config: Path, out: Path, run_id: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench", "--config-dir", str(config), "run", "--suite", "tiny",
                             "--out", str(out), "--run-id", run_id, "--scratch", str(out / "scratch"), *extra],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the run ended before the kill point"
        assert time.monotonic() < deadline, "kill point not reached in time"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def resume_and_check(config: Path, out: Path, run_id: str, envs: set[str], workloads: list[str] = WORKLOADS) -> None:
    run = out / run_id
    assert effective_status(read_manifest(run)) == "incomplete"
    with pytest.warns(UserWarning, match="incomplete"):
        bench.load(run)  # what was finished loads
    assert leftover_tools(out) == [], "a tool outlived the killed run"

    r = bench_cli("--config-dir", str(config), "run", "--out", str(out), "--resume", run_id, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["status"] == "complete" and manifest["resumed_at"]
    df = bench.load(run)
    measured = df[df.workload != "provision"]
    cells = set(zip(measured.environment, measured.workload, measured.repetition))
    assert cells == {(e, w, rep) for e in envs for w in workloads for rep in range(1, REPS + 1)}
    # no repetition measured twice: a resumed run adds only what was missing
    assert not measured.duplicated(["environment", "workload", "repetition", "metric"]).any()
    # provisioning again is an attempt in run.json, not a second sample: the samples an
    # uninterrupted run would hold
    provision = df[df.workload == "provision"]
    assert not provision.duplicated(["environment", "metric"]).any()
    assert cleanup.find(run_id, out / "scratch") == []
    assert leftover_tools(out) == []


# Two points: a tool in flight and nothing stored, and samples stored with a repetition in
# flight (a kill after the first repetition went through the same resume as midway's).
@pytest.mark.parametrize("point", ["first warm-up", "midway"])
def test_host_run_killed_then_resumed(tiny, tmp_path, point):
    run_id = f"host-{point.replace(' ', '-')}"
    proc = start(tiny, tmp_path, run_id, "--env", "host")
    run = tmp_path / run_id
    ready = {
        # the first warm-up (sysbench) is running; version probes (sysbench --version) are not it
        "first warm-up": lambda: any("--threads=1" in d for d in describe(tool_pids(tmp_path))),
        "midway": lambda: sample_lines(run) >= 10,
    }[point]
    kill_when(proc, ready)
    resume_and_check(tiny, tmp_path, run_id, {"host"})


def docker_ok() -> bool:
    from bench.environments.docker import DockerEnvironment

    return DockerEnvironment.availability(DockerEnvironment.Variant())[0]


@pytest.mark.skipif(not docker_ok() and not os.environ.get("CI"), reason="dockerd is not running")
def test_docker_run_killed_then_resumed(tiny, tmp_path):
    proc = start(tiny, tmp_path, DOCKER_KILLED, "--env", "host,docker-nat")
    run = tmp_path / DOCKER_KILLED
    kill_when(proc, lambda: sample_lines(run) >= 2)
    left = {l.kind for l in cleanup.find(DOCKER_KILLED, tmp_path / "scratch")}
    assert {"container", "volume"} <= left  # what SIGKILL leaves: the resume must remove it
    resume_and_check(tiny, tmp_path, DOCKER_KILLED, {"host", "docker-nat"})


def libvirt_ok() -> bool:
    from bench.environments.libvirt import LibvirtEnvironment

    return LibvirtEnvironment.availability(LibvirtEnvironment.Variant.model_validate({"accel": "tcg"}), allow_tcg=True)[0]


@pytest.mark.skipif(not libvirt_ok() and not os.environ.get("CI"), reason="libvirtd is not running")
def test_tcg_guest_killed_while_booting_then_resumed(tiny, tmp_path):
    # What is killed is the boot: sysbench alone after it (the other tools ran their resumed
    # repetitions above; under TCG, fio alone would add half a minute, its libraries' hashes
    # in the parity probe the most of it).
    (tiny / "suites" / "tiny.yaml").write_text(f"repetitions: {REPS}\nworkloads: [sysbench-tiny]\n")
    proc = start(tiny, tmp_path, VM_KILLED, "--env", "tcg", "--allow-tcg")
    kill_when(proc, lambda: any(l.kind == "domain" for l in cleanup.find(VM_KILLED, tmp_path / "scratch")))
    resume_and_check(tiny, tmp_path, VM_KILLED, {"tcg"}, ["sysbench-tiny"])
    boots = bench.load(tmp_path / VM_KILLED).query("workload == 'provision'")
    assert len(boots) == 1  # the killed boot never reached the agent; the resumed one did
