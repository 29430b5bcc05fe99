"""The podman kind on the real Podman of this machine (rootful, through a `podman system
service` of the run's own): a run beside docker-nat, what it records, and what a killed run
leaves for `bench cleanup`."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from bench import cleanup, settings
from bench.environments import podman
from bench.environments.podman import PodmanEnvironment

from conftest import bench_cli, short_tools

pytestmark = pytest.mark.integration
SESSION = f"t{os.getpid()}"


@pytest.fixture(scope="module")
def podman_here():
    ok, why = PodmanEnvironment.availability(PodmanEnvironment.Variant())
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"podman must run in CI: {why}")
        pytest.skip(why)


def service_processes(folder) -> list[int]:
    marker = str(folder / "podman.sock").encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker in open(f"/proc/{entry}/cmdline", "rb").read():
                    found.append(int(entry))
            except OSError:
                pass
    return found


def nothing_left(run_id: str, environment: str) -> None:
    folder = settings.current().podman_root / podman.folder_name(run_id, environment)
    assert not folder.exists(), folder
    assert service_processes(folder) == []
    assert podman.labelled(run_id) == []


def test_podman_runs_beside_docker_with_the_same_tools_and_leaves_nothing(podman_here, config_copy, tmp_path):
    run_id = f"{SESSION}-podman"
    (config_copy / "suites" / "tiny.yaml").write_text(
        "description: a CPU, a disk and a network cell\nprofile: quick\nrepetitions: 1\n"
        "workloads: [sysbench-cpu, fio-randread-4k, netperf-tcp-rr]\n")
    r = bench_cli("--config-dir", str(short_tools(config_copy)), "run", "--suite", "tiny", "--env", "docker-nat,podman",
                  "--out", str(tmp_path), "--run-id", run_id, "--scratch", str(tmp_path / "scratch"))
    assert r.returncode == 0, r.stderr[-3000:]
    run = json.loads((tmp_path / run_id / "run.json").read_text())
    meta = run["environments"]["podman"]["metadata"]
    assert meta["engine"] == "podman" and meta["podman_version"].startswith(("4.", "5."))
    assert meta["runtime"] == "runc" and meta["env_kind"] == "podman"   # as Docker's: only the engine differs
    # The container got the service's own hard limits, not Podman's 1048576 that fails here.
    limits = podman.hard_limits(os.getpid())
    assert f"RLIMIT_NOFILE={limits['nofile']}" in meta["ulimits"]
    # The same binaries as native (the parity probe): only the process limit may differ, explained.
    differences = run["parity"].get("podman", [])
    assert not [d for d in differences if d["blocking"]], differences
    assert {d["key"] for d in differences} <= {"limit.nproc"}
    samples = [json.loads(line) for line in (tmp_path / run_id / "samples.jsonl").read_text().splitlines()]
    measured = {(s["environment"], s["workload"]) for s in samples if s["metric"] != "provision"}
    for workload in ("sysbench-cpu", "fio-randread-4k", "netperf-tcp-rr"):
        assert ("podman", workload) in measured and ("docker-nat", workload) in measured
    raw = (tmp_path / run_id / "raw" / "podman" / "netperf-tcp-rr" / "rep-1.txt").read_text()
    assert "127.0.0.1" in raw  # reached at its port published on loopback
    nothing_left(run_id, "podman")


def test_cleanup_removes_what_a_killed_podman_run_left(podman_here, tmp_path):
    run_id = f"{SESSION}-podman-left"
    env = PodmanEnvironment("podman", {"network": "nat", "storage": "volume"}, run_id)
    try:
        env.provision(str(tmp_path), n_ports=1)  # and never torn down: as if the run was SIGKILLed
        assert env.exec(["true"], timeout=30).ok
        found = {(leftover.kind, leftover.run_id) for leftover in cleanup.find(run_id, tmp_path)}
        assert {("podman container", run_id), ("podman volume", run_id), ("podman service", run_id)} <= found
        r = bench_cli("cleanup", "--run-id", run_id, "--scratch", str(tmp_path))
        assert r.returncode == 0, r.stderr
        nothing_left(run_id, "podman")
        assert cleanup.find(run_id, tmp_path) == []
    finally:
        env.teardown()  # a second teardown finds nothing and says nothing
    r = subprocess.run(["podman", "ps", "-a", "--filter", f"label=bench.run_id={run_id}", "-q"],
                       capture_output=True, text=True)
    assert r.stdout.strip() == ""
