"""Docker environments against the real dockerd, with the workload image built from Debian packages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import bench
from bench import config, image
from bench.environments import wait_for_port
from bench.environments.docker import LABEL_RUN, DockerEnvironment

from conftest import ROOT, bench_cli, same_shapes_as_the_recorded_run, short_tools

pytestmark = pytest.mark.integration
DOCKER_KILLED = f"docker-killed-{os.getpid()}"  # machine-wide names: unique per session


@pytest.fixture(scope="session")
def workload_image(docker_client):
    """Built once per test session (and kept: the cache is the point)."""
    return image.docker_image(docker_client, image.recipe())


def labelled(docker_client, run_id: str) -> list[str]:
    selector = {"label": f"{LABEL_RUN}={run_id}"}
    return ([c.name for c in docker_client.containers.list(all=True, filters=selector)] +
            [v.name for v in docker_client.volumes.list(filters=selector)])


@pytest.fixture(scope="module")
def nat(workload_image, tmp_path_factory):
    env = DockerEnvironment("docker-nat", {"network": "nat", "storage": "volume"}, f"t{os.getpid()}-nat")
    env.provision(str(tmp_path_factory.mktemp("scratch")), n_ports=2)
    yield env
    env.teardown()


def test_image_is_cached_by_recipe(docker_client, workload_image):
    recipe = image.recipe()
    assert recipe.tag in workload_image.tags
    assert workload_image.labels[image.LABEL_RECIPE] == recipe.digest
    start = time.monotonic()
    again = image.docker_image(docker_client, recipe)
    assert again.id == workload_image.id and time.monotonic() - start < 10  # nothing rebuilt


def test_same_binaries_as_the_host(nat):
    from bench.environments.host import run_argv

    for argv in (["fio", "--version"], ["sysbench", "--version"],
                 ["dpkg-query", "-W", "-f=${Version}", "hpcc"]):
        assert nat.exec(argv, timeout=30).stdout == run_argv(argv, timeout=30).stdout, argv


def test_exec_status_output_and_errors(nat):
    r = nat.exec(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=30)
    assert (r.returncode, r.stdout, r.stderr, r.timed_out) == (3, "out\n", "err\n", False)
    assert nat.exec(["no-such-program"], timeout=30).returncode == 127


def test_timeout_kills_the_process_tree_inside(nat):
    start = time.monotonic()
    r = nat.exec(["sh", "-c", "sleep 300 & sleep 300"], timeout=2)
    assert r.timed_out and r.returncode is None and time.monotonic() - start < 20
    time.sleep(0.5)
    ps = nat.exec(["ps", "-eo", "args"], timeout=30).stdout
    assert "sleep 300" not in ps, ps


def test_files_in_and_out(nat):
    nat.put_file(f"{nat.workdir}/a/b.txt", b"payload\n")
    assert nat.get_file(f"{nat.workdir}/a/b.txt") == b"payload\n"
    with pytest.raises(FileNotFoundError):
        nat.get_file(f"{nat.workdir}/missing")


def test_nat_publishes_server_ports_on_loopback_only(nat):
    nat.container.reload()
    bindings = nat.container.attrs["HostConfig"]["PortBindings"]
    assert {k: v[0]["HostIp"] for k, v in bindings.items()} == {
        f"{p}/{proto}": "127.0.0.1" for p in nat.ports for proto in ("tcp", "udp")}  # UDP for UDP_RR
    assert all(v[0]["HostPort"] == k.split("/")[0] for k, v in bindings.items())  # published 1:1
    server = nat.start_server(["netserver", "-D", "-4", "-L", nat.listen_address, "-p", str(nat.ports[0])],
                              "netserver-test")
    try:
        assert wait_for_port(*nat.endpoint(nat.ports[0]), timeout=15)
    finally:
        log = server.stop()
    assert "Starting netserver" in log
    assert "netserver" not in nat.exec(["ps", "-eo", "comm"], timeout=30).stdout


def test_labels_volume_and_metadata(docker_client, nat):
    assert nat.container.labels[LABEL_RUN] == nat.run_id
    mounts = {m["Destination"]: m for m in nat.container.attrs["Mounts"]}
    assert mounts[nat.workdir]["Type"] == "volume" and mounts[nat.workdir]["Name"] == nat.volume.name
    meta = nat.metadata()
    assert meta["network_mode"] == "nat" and meta["storage"] == "volume"
    assert meta["storage_driver"] == "overlay2" and meta["image_id"].startswith("sha256:")


def test_host_network_and_overlay_storage(docker_client, workload_image, tmp_path):
    env = DockerEnvironment("docker-host", {"network": "host", "storage": "overlay"}, f"t{os.getpid()}-host")
    try:
        env.provision(str(tmp_path), n_ports=1)
        assert env.container.attrs["HostConfig"]["NetworkMode"] == "host"
        assert env.listen_address == "127.0.0.1"  # never open on the host's other interfaces
        assert env.volume is None and not env.container.attrs["Mounts"]
        assert env.exec(["stat", "-f", "-c", "%T", env.workdir], timeout=30).stdout.strip() == "overlayfs"
    finally:
        env.teardown()
    assert labelled(docker_client, env.run_id) == []


def test_cleanup_removes_what_a_killed_run_left(docker_client, workload_image, tmp_path):
    run_id = f"t{os.getpid()}-leftover"
    env = DockerEnvironment("docker-nat", {"network": "nat", "storage": "volume"}, run_id)
    env.provision(str(tmp_path), n_ports=1)  # and never torn down: as if the run was SIGKILLed
    assert len(labelled(docker_client, run_id)) == 2
    dry = bench_cli("cleanup", "--run-id", run_id, "--dry-run")
    assert dry.returncode == 0 and "would remove container" in dry.stdout and "would remove volume" in dry.stdout
    assert len(labelled(docker_client, run_id)) == 2
    real = bench_cli("cleanup", "--run-id", run_id)
    assert real.returncode == 0, real.stderr
    assert labelled(docker_client, run_id) == []
    assert "nothing to clean up" in bench_cli("cleanup", "--run-id", run_id).stdout


def test_quick_suite_side_by_side_on_nat_and_host_network(docker_client, workload_image, config_copy, tmp_path):
    """The quick suite's disk, CPU, memory and network workloads in two Docker environments at
    once, each tool for about a second (short_tools: what is asked is that each runs there and
    gives the recorded run's cells). (Its applications, Redis and MariaDB, have their own Docker
    tests: test_redis, test_mariadb; the host's cells of the quick suite, at its own sizes, are
    test_run_host's.)"""
    run_id = f"side-by-side-{os.getpid()}"  # labels are machine-wide: unique per session
    quick = config.load(config_copy).suite("quick").workloads
    (config_copy / "suites" / "side.yaml").write_text(
        "description: the quick suite without its applications\nprofile: quick\nrepetitions: 1\n"
        f"workloads: {json.dumps([w for w in quick if w not in ('redis', 'mariadb-oltp')])}\n")
    r = bench_cli("--config-dir", str(short_tools(config_copy)), "run", "--suite", "side", "--env", "docker-nat,docker-host",
                  "--out", str(tmp_path), "--run-id", run_id, "--scratch", str(tmp_path / "scratch"))
    assert r.returncode == 0, r.stderr[-3000:]
    df = bench.load(tmp_path / run_id)
    envs = {"docker-nat", "docker-host"}
    for workload, metric in [("fio-randread-4k", "read_iops"), ("fio-seqread-1m", "read_bandwidth"),
                             ("sysbench-cpu", "events_per_second"), ("hpcc", "stream_triad"),
                             ("netperf-tcp-rr", "latency_mean")]:
        rows = df[(df.workload == workload) & (df.metric == metric)]
        assert set(rows.environment) == envs, (workload, set(rows.environment))
        assert (rows.value > 0).all()
    assert set(df.env_kind) == {"docker"}
    manifest = json.loads((tmp_path / run_id / "run.json").read_text())
    assert manifest["environments"]["docker-nat"]["metadata"]["nat_path"].startswith("docker-proxy")
    assert manifest["environments"]["docker-host"]["metadata"]["network_mode"] == "host"
    assert manifest["tool_version_mismatches"] == {}
    assert labelled(docker_client, run_id) == []
    assert list((tmp_path / "scratch").iterdir()) == []
    same_shapes_as_the_recorded_run(tmp_path / run_id, short=True)


def test_sigterm_removes_containers_and_volumes(docker_client, workload_image, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "bench", "run", "--env", "docker-nat", "--reps", "3",
                             "--out", str(tmp_path), "--run-id", DOCKER_KILLED,
                             "--scratch", str(tmp_path / "scratch")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples = tmp_path / DOCKER_KILLED / "samples.jsonl"
    deadline = time.monotonic() + 180
    while not (samples.exists() and samples.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert labelled(docker_client, DOCKER_KILLED), "the run should have a container by now"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]   # 128 + SIGTERM
    assert labelled(docker_client, DOCKER_KILLED) == []
    with pytest.warns(UserWarning, match="run is interrupted"):
        assert len(bench.load(tmp_path / DOCKER_KILLED)) > 0


def test_a_container_removed_mid_run_is_provisioned_anew_and_retry_failed_measures_the_lost_repetition(
        docker_client, workload_image, config_copy, tmp_path):
    """The backend of one environment gone (its container removed under it, as a dockerd restart
    would): the repetition in flight is a recorded failure of cause "backend", the environment is
    provisioned anew (said, and in run.json), its later repetitions are measured, the host's
    complete, exit status 1, no traceback. `--resume --retry-failed` then measures the lost one:
    every repetition of both environments, none twice, and nothing left."""
    run_id = f"docker-gone-{os.getpid()}"
    (config_copy / "suites" / "gone.yaml").write_text(
        "description: docker-nat loses its container\nprofile: quick\nrepetitions: 5\nworkloads: [sysbench-cpu]\n")
    common = ["--config-dir", str(short_tools(config_copy)), "run", "--out", str(tmp_path), "--scratch", str(tmp_path / "scratch")]
    proc = subprocess.Popen([sys.executable, "-m", "bench", *common, "--suite", "gone", "--env", "host,docker-nat",
                             "--run-id", run_id], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples = tmp_path / run_id / "samples.jsonl"
    deadline = time.monotonic() + 180

    def measured_in_docker() -> bool:
        lines = samples.read_text().splitlines() if samples.exists() else []
        return any('"docker-nat"' in line and '"sysbench-cpu"' in line for line in lines)

    while time.monotonic() < deadline and not measured_in_docker():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.2)
    for container in docker_client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"}):
        container.remove(force=True)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert "docker-nat: its backend failed" in err and "docker-nat provisioned anew" in err, err[-3000:]
    failures = [json.loads(line) for line in (tmp_path / run_id / "failures.jsonl").read_text().splitlines()]
    assert failures and {(f["environment"], f["cause"]) for f in failures} == {("docker-nat", "backend")}
    manifest = json.loads((tmp_path / run_id / "run.json").read_text())
    assert [r["environment"] for r in manifest["reprovisioned"]] == ["docker-nat"]
    df = bench.load(tmp_path / run_id)
    measured = df[(df.workload == "sysbench-cpu") & (df.metric == "events_per_second")]
    assert sorted(measured[measured.environment == "host"].repetition) == [1, 2, 3, 4, 5]
    lost = {f["repetition"] for f in failures}
    in_docker = set(measured[measured.environment == "docker-nat"].repetition)
    assert in_docker and max(in_docker) > max(lost), "measured again after the new container"
    assert in_docker | lost == {1, 2, 3, 4, 5} and not in_docker & lost, "every repetition measured or failed"
    # The re-provisioning is an attempt in run.json, not a second `provision` sample.
    assert len(df[(df.environment == "docker-nat") & (df.metric == "container_start")]) == 1
    assert manifest["environments"]["docker-nat"]["provision_attempts"][0]["measurements"]["container_start"] > 0
    assert labelled(docker_client, run_id) == []

    r = bench_cli(*common, "--resume", run_id)
    assert r.returncode == 2 and "--retry-failed" in r.stderr, r.stderr
    r = bench_cli(*common, "--resume", run_id, "--retry-failed")
    assert r.returncode == 0, r.stderr[-3000:]
    df = bench.load(tmp_path / run_id)
    measured = df[(df.workload == "sysbench-cpu") & (df.metric == "events_per_second")]
    for environment in ("host", "docker-nat"):
        assert sorted(measured[measured.environment == environment].repetition) == [1, 2, 3, 4, 5], environment
    assert len(df[(df.environment == "docker-nat") & (df.metric == "container_start")]) == 1
    assert "measured again by --retry-failed" in (tmp_path / run_id / "report.html").read_text()
    assert labelled(docker_client, run_id) == []
