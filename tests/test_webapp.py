"""webapp, the two-tier web application (HTTP front + Redis under wrk), and the compose
environment that runs it as Compose does: the parser on recorded wrk outputs, the compose file's
checks on docker-compose's own reading of it, which cells a plan leaves out, and real runs on the
host and in two containers on a user-defined bridge."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

import bench
from bench import config, plan
from bench.environments.compose import (LABEL_PROJECT, ComposeEnvironment, bookkeeping, check_topology,
                                        project_name)
from bench.environments.docker import LABEL_RUN
from bench.environments.host import HostEnvironment
from bench.errors import BenchError, ConfigError, ToolError
from bench.workloads import TOOLS, CellContext
from bench.workloads.webapp import WebappParams

from conftest import ROOT, bench_cli, recorded

WEBAPP = TOOLS["webapp"]
COMPOSE_FILE = ROOT / "workloads" / "compose" / "webapp" / "compose.yaml"
VARIANT = ComposeEnvironment.Variant(file="compose/webapp/compose.yaml")


def metric(measurements, name):
    found = [m for m in measurements if m.metric == name]
    assert len(found) == 1, (name, measurements)
    return found[0]


# -- parser, on recorded output ------------------------------------------------------------

def test_throughput_and_latency_distribution():
    ms = WEBAPP.parse(recorded("webapp", "host-c8-t1.txt"), WEBAPP.Params(connections=8))
    assert [m.metric for m in ms] == ["requests_per_second", "latency_mean", "latency_p50", "latency_p75",
                                      "latency_p90", "latency_p99", "latency_max"]
    rps = metric(ms, "requests_per_second")
    assert (rps.value, rps.unit, rps.better) == (pytest.approx(5132.38), "req/s", "higher")
    p99 = metric(ms, "latency_p99")
    assert (p99.value, p99.unit, p99.better) == (pytest.approx(12.04), "ms", "lower")
    assert metric(ms, "latency_mean").value == pytest.approx(2.17)
    assert metric(ms, "latency_p50").value == pytest.approx(0.88)
    assert metric(ms, "latency_max").value == pytest.approx(26.16)


def test_microseconds_are_converted_to_milliseconds():
    # a copy in memory of the 502 run, as if every answer had been a 200 and Redis had counted them
    text = recorded("webapp", "no-redis.txt").replace("  Non-2xx or 3xx responses: 15640\n", "")
    ms = WEBAPP.parse(text + "# redis_counter=15640\n", WEBAPP.Params(connections=4))
    assert metric(ms, "latency_p50").value == pytest.approx(0.388)
    assert metric(ms, "latency_p75").value == pytest.approx(0.609)
    assert metric(ms, "latency_p99").value == pytest.approx(29.45)


def test_redis_may_count_one_request_per_connection_that_wrk_did_not():
    text = recorded("webapp", "host-c32-t2.txt")
    assert "19474 requests" in text and "# redis_counter=19475" in text
    assert metric(WEBAPP.parse(text, WEBAPP.Params(connections=32)), "requests_per_second").value == pytest.approx(6404.96)


def test_a_front_that_did_not_do_one_redis_round_trip_per_request_fails():
    text = recorded("webapp", "host-c8-t1.txt")
    with pytest.raises(ToolError, match="Redis counted 15000 requests, wrk 15592"):
        WEBAPP.parse(text.replace("# redis_counter=15592", "# redis_counter=15000"), WEBAPP.Params(connections=8))
    with pytest.raises(ToolError, match="Redis counted 15601"):  # more than 8 in flight
        WEBAPP.parse(text.replace("# redis_counter=15592", "# redis_counter=15601"), WEBAPP.Params(connections=8))
    with pytest.raises(ToolError, match="no Redis counter"):
        WEBAPP.parse(text.replace("# redis_counter=15592\n", ""), WEBAPP.Params(connections=8))


def test_errors_of_the_application_fail_the_repetition():
    with pytest.raises(ToolError, match="15640 responses were not 2xx"):  # the front could not reach Redis
        WEBAPP.parse(recorded("webapp", "no-redis.txt"), WEBAPP.Params(connections=4))
    with pytest.raises(ToolError, match="socket errors: Socket errors: connect 0, read 4, write 34055"):
        WEBAPP.parse(recorded("webapp", "front-killed.txt"), WEBAPP.Params(connections=4))
    assert "Connection refused" in recorded("webapp", "no-front.stderr")
    with pytest.raises(ToolError, match="no wrk summary"):
        WEBAPP.parse(recorded("webapp", "no-front.txt"), WEBAPP.Params(connections=4))


# -- parameters and catalogue ---------------------------------------------------------------

@pytest.mark.parametrize("bad", [{"connections": 0}, {"threads": 4, "connections": 2}, {"duration": 0},
                                 {"requests": 1000}])
def test_bad_params_are_refused(bad):
    with pytest.raises(ValueError):
        WebappParams(**bad)


def test_catalogue_entry_and_client_command():
    cat = config.load()
    quick, lab = cat.workload("webapp", "quick"), cat.workload("webapp", "lab")
    assert quick.params.duration < lab.params.duration
    assert quick.timeout > quick.params.duration + quick.params.timeout
    argv = WEBAPP.client_argv(lab.params, "http://127.0.0.1:8080/")
    assert argv[:2] == ["wrk", "--latency"] and argv[-1] == "http://127.0.0.1:8080/"
    assert argv[argv.index("-c") + 1] == "64" and argv[argv.index("-d") + 1] == "30s"
    assert WEBAPP.services == ("front", "redis") and WEBAPP.server_ports == 2
    assert {"python3", "redis-server", "wrk"} <= set(WEBAPP.packages)  # in the workload image too


def test_docker_compose_is_a_variant_compared_with_the_host():
    spec = config.load().environment("docker-compose")
    assert (spec.kind, spec.dimension, spec.baseline) == ("compose", "application-topology", "host")
    assert (ROOT / "workloads" / spec.variant["file"]) == COMPOSE_FILE


# -- which cells a plan has -----------------------------------------------------------------

def test_compose_runs_only_the_workloads_whose_services_its_file_defines():
    assert ComposeEnvironment.refusal(VARIANT, WEBAPP) is None
    assert "only multi-tier workloads" in str(ComposeEnvironment.refusal(VARIANT, TOOLS["redis"]))
    nothing = HostEnvironment.Variant()
    assert HostEnvironment.refusal(nothing, WEBAPP) is None and HostEnvironment.refusal(nothing, TOOLS["fio"]) is None
    missing = ComposeEnvironment.Variant(file="compose/none/compose.yaml")
    assert "cannot read" in str(ComposeEnvironment.refusal(missing, WEBAPP))


@pytest.mark.integration
def test_a_plan_leaves_out_the_cells_an_environment_does_not_run(tmp_path):
    ok, why = ComposeEnvironment.availability(VARIANT)
    if not ok:
        pytest.skip(why)
    cat = config.load()
    p = plan.resolve(cat, "apps", environments=["host", "docker-compose"], out=tmp_path)
    steps = plan.schedule(p)
    assert {s.workload.name for s in steps if s.environment == "docker-compose"} == {"webapp"}
    assert {s.workload.name for s in steps if s.environment == "host"} == {"redis", "mariadb-oltp", "mariadb-oltp-rw", "webapp"}
    with pytest.raises(BenchError, match="'docker-compose' runs none of suite io's workloads: it runs only "
                                         "multi-tier workloads"):
        plan.resolve(cat, "io", environments=["docker-compose"], out=tmp_path)
    p = plan.resolve(cat, "io", out=tmp_path)  # every environment available
    assert "docker-compose" not in p.environments
    assert "docker-compose" not in p.skipped_environments  # by_default: false, so never considered


# -- the compose file, as docker-compose reads it --------------------------------------------

def compose_config(*files: Path, image: str = "bench-workload:test") -> dict:
    argv = ["docker-compose", "--project-name", "bench-config-test"]
    for f in files:
        argv += ["-f", str(f)]
    r = subprocess.run([*argv, "config"], capture_output=True, text=True, timeout=60,
                       env={"PATH": os.environ["PATH"], "BENCH_IMAGE": image, "BENCH_PORT_0": "40001",
                            "BENCH_PORT_1": "40002"})
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)


@pytest.fixture
def compose_tool():
    ok, why = ComposeEnvironment.availability(VARIANT)
    if not ok:
        pytest.skip(why)


@pytest.mark.integration
def test_the_webapp_topology_passes_and_bench_adds_only_bookkeeping(compose_tool, tmp_path):
    resolved = compose_config(COMPOSE_FILE)
    check_topology(resolved, "bench-workload:test", COMPOSE_FILE)
    labels = {LABEL_RUN: "r1", "bench.environment": "docker-compose"}
    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump(bookkeeping(resolved, labels)))
    merged = compose_config(COMPOSE_FILE, override)
    # Compose replaces a network an override names: the bookkeeping keeps its definition
    assert merged["networks"]["backend"] == {"driver": "bridge", "labels": labels}
    for name, svc in merged["services"].items():
        assert svc["labels"] == labels and svc["command"] == ["sleep", "infinity"] and svc["init"] is True
        assert set(svc["networks"]) == set(resolved["services"][name]["networks"]) == {"backend"}
        assert svc["image"] == "bench-workload:test"
    assert merged["services"]["front"]["ports"] == resolved["services"]["front"]["ports"]
    assert "ports" not in merged["services"]["redis"]


@pytest.mark.integration
def test_a_service_without_networks_gets_a_labelled_default_network(compose_tool, tmp_path):
    f = tmp_path / "compose.yaml"
    f.write_text('version: "3.7"\nservices:\n  a: {image: "${BENCH_IMAGE}"}\n')
    doc = bookkeeping(compose_config(f), {LABEL_RUN: "r1"})
    assert doc["networks"] == {"default": {"labels": {LABEL_RUN: "r1"}}}


@pytest.mark.integration
@pytest.mark.parametrize("service, error", [
    ("{image: 'redis:7'}", "runs 'redis:7'"),
    ("{image: '${BENCH_IMAGE}', ports: ['8080:8080']}", "beyond 127.0.0.1"),
    ("{image: '${BENCH_IMAGE}', ports: ['0.0.0.0:8080:8080']}", "beyond 127.0.0.1"),
    ("{image: '${BENCH_IMAGE}', network_mode: host}", "network_mode: host"),
    ("{image: '${BENCH_IMAGE}', networks: [ext]}\nnetworks:\n  ext: {external: true}", "network ext is external"),
])
def test_what_bench_does_not_run_is_refused(compose_tool, tmp_path, service, error):
    f = tmp_path / "compose.yaml"
    f.write_text(f'version: "3.7"\nservices:\n  a: {service}\n')
    with pytest.raises(ConfigError, match=error):
        check_topology(compose_config(f), "bench-workload:test", f)


# -- real runs ------------------------------------------------------------------------------

def labelled(docker_client, run_id: str) -> list[str]:
    selector = {"label": f"{LABEL_RUN}={run_id}"}
    return ([f"container {c.name}" for c in docker_client.containers.list(all=True, filters=selector)] +
            [f"network {n.name}" for n in docker_client.networks.list(filters=selector)] +
            [f"volume {v.name}" for v in docker_client.volumes.list(filters=selector)])


def of_project(docker_client, project: str) -> list[str]:
    selector = {"label": f"{LABEL_PROJECT}={project}"}
    return ([c.name for c in docker_client.containers.list(all=True, filters=selector)] +
            [n.name for n in docker_client.networks.list(filters=selector)])


@pytest.fixture(scope="module")
def workload_image(docker_client):
    from bench import image

    return image.docker_image(docker_client, image.recipe())


TINY = WEBAPP.Params(connections=4, threads=1, duration=2, timeout=10)


@pytest.mark.integration
def test_two_tiers_in_two_containers_on_one_user_network(docker_client, workload_image, tmp_path, compose_tool):
    run_id = f"t{os.getpid()}-compose"
    env = ComposeEnvironment("docker-compose", VARIANT, run_id)
    client = HostEnvironment("client", {}, run_id)
    client.provision(str(tmp_path), 0)
    try:
        env.provision(str(tmp_path), n_ports=2)
        front, redis = env.service("front"), env.service("redis")
        assert front.container.id != redis.container.id
        # one user-defined bridge network, both containers on it, and no other network
        network = f"{env.project}_backend"
        for svc in (front, redis):
            svc.container.reload()
            assert set(svc.container.attrs["NetworkSettings"]["Networks"]) == {network}
            assert svc.container.labels[LABEL_RUN] == run_id
        net = docker_client.networks.get(network)
        assert net.attrs["Driver"] == "bridge" and net.attrs["Labels"][LABEL_RUN] == run_id
        assert set(net.attrs["Containers"]) == {front.container.id, redis.container.id}
        # the front resolves Redis by its service name to the Redis container's address there
        redis_ip = redis.container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        r = front.exec(["getent", "hosts", "redis"], timeout=30)
        assert r.ok and r.stdout.split()[0] == redis_ip, r
        # only the front's port is published, on loopback under the same number
        bindings = front.container.attrs["NetworkSettings"]["Ports"]
        assert bindings == {f"{env.ports[0]}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(env.ports[0])}]}
        assert not any(redis.container.attrs["NetworkSettings"]["Ports"].values())

        ctx = CellContext(env=env, client=client, params=TINY, timeout=60, label="webapp")
        raw = WEBAPP.run(ctx)
        assert raw.result.ok, raw.result.stderr
        ms = WEBAPP.parse(raw.text, TINY)  # Redis' counter agrees with wrk's requests (checked inside)
        assert metric(ms, "requests_per_second").value > 50
        assert f"Redis at redis:{env.ports[1]}" in raw.extra["front"]
        # each tier ran in its own container: Redis' log and the front's code are where they belong
        assert redis.exec(["test", "-s", f"/bench/work/webapp-redis-webapp.log"], timeout=30).ok
        assert not front.exec(["test", "-e", f"/bench/work/webapp-redis-webapp.log"], timeout=30).ok
        assert front.exec(["test", "-s", "/bench/work/front.py"], timeout=30).ok
        assert not redis.exec(["test", "-e", "/bench/work/front.py"], timeout=30).ok
        # Redis counted the requests the front sent it, in the redis container
        counted = int(raw.text.split("# redis_counter=")[1])
        served = int(raw.text.split(" requests in ")[0].split()[-1])
        assert served <= counted <= served + TINY.connections
        meta = env.metadata()
        assert meta["services"] == "front,redis" and meta["networks"] == f"{network}(bridge)"
        assert set(env.artifacts()) == {"compose.yaml", "compose.config.yaml", "bench.override.yaml"}
    finally:
        env.teardown()
        client.teardown()
    assert labelled(docker_client, run_id) == []
    assert of_project(docker_client, project_name(run_id, "docker-compose")) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(f"bench-{run_id}-")]


@pytest.mark.integration
def test_a_refused_compose_file_makes_nothing(docker_client, workload_image, tmp_path, compose_tool, config_copy,
                                              monkeypatch):
    (config_copy / "compose" / "webapp" / "compose.yaml").write_text(
        'version: "3.7"\nservices:\n  front: {image: "${BENCH_IMAGE}", ports: ["${BENCH_PORT_0}:80"]}\n'
        '  redis: {image: "${BENCH_IMAGE}"}\n')
    from bench import datadir

    monkeypatch.setattr(datadir, "_root", config_copy)  # as config.load(config_copy) makes it
    run_id = f"t{os.getpid()}-refused"
    env = ComposeEnvironment("docker-compose", VARIANT, run_id)
    with pytest.raises(ConfigError, match="beyond 127.0.0.1"):
        env.provision(str(tmp_path / "scratch"), n_ports=2)
    env.teardown()
    assert labelled(docker_client, run_id) == [] and list((tmp_path / "scratch").iterdir()) == []


@pytest.mark.integration
def test_cleanup_removes_what_a_killed_compose_run_left(docker_client, workload_image, tmp_path, compose_tool):
    run_id = f"t{os.getpid()}-compose-left"
    env = ComposeEnvironment("docker-compose", VARIANT, run_id)
    env.provision(str(tmp_path), n_ports=2)  # and never torn down: as if the run was SIGKILLed
    left = labelled(docker_client, run_id)
    assert len(left) == 3, left  # two containers and their network
    real = bench_cli("cleanup", "--run-id", run_id, "--scratch", str(tmp_path))
    assert real.returncode == 0, real.stderr
    assert "removing network" in real.stdout and "removing scratch folder" in real.stdout
    assert labelled(docker_client, run_id) == []
    assert of_project(docker_client, env.project) == []


@pytest.fixture
def tiny_webapp(config_copy):
    (config_copy / "catalogue" / "webapp.yaml").write_text(
        f"webapp:\n  tool: webapp\n  warmups: 0\n  params: {json.dumps(TINY.model_dump())}\n")
    (config_copy / "suites" / "webapp-tiny.yaml").write_text("profile: quick\nrepetitions: 1\nworkloads: [webapp]\n")
    return config_copy


@pytest.mark.integration
def test_webapp_on_the_host_and_as_compose_runs_it(docker_client, workload_image, tmp_path, compose_tool, tiny_webapp):
    run_id = f"webapp-{os.getpid()}"
    r = bench_cli("--config-dir", str(tiny_webapp), "run", "--suite", "webapp-tiny", "--env", "host,docker-compose",
                  "--out", str(tmp_path), "--run-id", run_id, "--scratch", str(tmp_path / "scratch"))
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / run_id
    df = bench.load(run)
    rps = df[df.metric == "requests_per_second"]
    assert set(rps.environment) == {"host", "docker-compose"} and (rps.value > 50).all()
    assert set(df[df.environment == "docker-compose"].env_kind) == {"compose"}
    assert set(df[df.environment == "docker-compose"].env_file) == {VARIANT.file}
    for env in ("host", "docker-compose"):
        text = (run / "raw" / env / "webapp" / "rep-1.txt").read_text()
        assert "Latency Distribution" in text and "# redis_counter=" in text
    assert "Redis at redis:" in (run / "raw" / "docker-compose" / "webapp" / "rep-1.front.txt").read_text()
    assert "Redis at 127.0.0.1:" in (run / "raw" / "host" / "webapp" / "rep-1.front.txt").read_text()
    provision = run / "raw" / "docker-compose" / "provision"
    assert "${BENCH_IMAGE}" in (provision / "compose.yaml").read_text()
    manifest = json.loads((run / "run.json").read_text())
    meta = manifest["environments"]["docker-compose"]["metadata"]
    assert meta["compose_version"].startswith("1.29") and meta["services"] == "front,redis"
    assert manifest["environments"]["docker-compose"]["tool_versions"]["webapp"].startswith("Python 3.11")
    assert manifest["tool_version_mismatches"] == {}  # Debian's /usr/bin/python3 on the host too, not PATH's
    assert "wrk" in manifest["client_tool_versions"]["webapp"]
    assert labelled(docker_client, run_id) == []
    assert list((tmp_path / "scratch").iterdir()) == []


@pytest.mark.integration
def test_sigterm_during_a_compose_run_removes_its_containers_and_network(docker_client, workload_image, tmp_path,
                                                                          compose_tool, tiny_webapp):
    import signal
    import sys
    import time

    run_id = f"compose-killed-{os.getpid()}"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "--config-dir", str(tiny_webapp), "run",
                             "--suite", "webapp-tiny", "--env", "docker-compose", "--reps", "5",
                             "--out", str(tmp_path), "--run-id", run_id, "--scratch", str(tmp_path / "scratch")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples = tmp_path / run_id / "samples.jsonl"
    deadline = time.monotonic() + 180
    while not (samples.exists() and "requests_per_second" in samples.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(labelled(docker_client, run_id)) == 3, "the run should have its two containers and network by now"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]   # 128 + SIGTERM
    assert labelled(docker_client, run_id) == []
    assert of_project(docker_client, project_name(run_id, "docker-compose")) == []
    assert list((tmp_path / "scratch").iterdir()) == []
