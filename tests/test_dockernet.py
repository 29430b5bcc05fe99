"""Docker networking variants against the real dockerd: container to container on a
user-defined bridge (docker-c2c), and a single-node Swarm service (docker-swarm through the
routing mesh, docker-swarm-host with host-mode publishing)."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess

import pytest

import bench
from bench import image, settings
from bench.environments import swarm
from bench.environments import netns
from bench.environments.docker import LABEL_RUN, DockerEnvironment
from bench.environments.host import HostEnvironment
from bench.workloads import TOOLS, CellContext

from conftest import bench_cli, fewer_redis_requests, no_warmups

pytestmark = pytest.mark.integration
C2C = {"network": "bridge", "client": "container", "storage": "volume"}


@pytest.fixture(scope="module")
def workload_image(docker_client):
    return image.docker_image(docker_client, image.recipe())


@pytest.fixture
def tiny_config(config_copy):
    """The catalogue with a suite of one netperf TCP_RR cell and one Redis cell (a tenth of
    quick's requests)."""
    fewer_redis_requests(config_copy)
    (config_copy / "suites" / "dockernet.yaml").write_text(
        "description: container networking variants\nprofile: quick\nrepetitions: 1\n"
        "workloads: [netperf-tcp-rr, redis]\n")
    return no_warmups(config_copy)


def made_by_run(docker_client, run_id: str) -> list[str]:
    """Containers, volumes and networks (and swarm services) that carry the run's label."""
    selector = {"label": f"{LABEL_RUN}={run_id}"}
    found = ([f"container {c.name}" for c in docker_client.containers.list(all=True, filters=selector)]
             + [f"volume {v.name}" for v in docker_client.volumes.list(filters=selector)]
             + [f"network {n.name}" for n in docker_client.networks.list(filters=selector)])
    if swarm.swarm_state(docker_client)[0] == "active":
        found += [f"service {s.name}" for s in docker_client.services.list(filters=selector)]
    return found


def sockets_between(env, address: str) -> list[str]:
    """TCP sockets (any state, TIME-WAIT included) in env's network namespace whose other end
    is `address`: what is left of a connection after it closed."""
    r = env.exec(["ss", "-tanH", "dst", address], timeout=30)
    assert r.ok, r.stderr
    return [line for line in r.stdout.splitlines() if line.strip()]


# -- container to container ------------------------------------------------------------------

def test_c2c_client_runs_in_the_peer_container_on_the_run_network(docker_client, workload_image, tmp_path):
    run_id = f"t{os.getpid()}-c2c"
    env = DockerEnvironment("docker-c2c", C2C, run_id)
    host = HostEnvironment("client", {}, run_id)
    try:
        env.provision(str(tmp_path), n_ports=2)
        client = env.client_environment(host)
        assert client is env.peer and client is not host
        # Both containers on the run's own labelled network, nothing else on it.
        env.network.reload()
        assert env.network.attrs["Labels"][LABEL_RUN] == run_id and env.network.attrs["Driver"] == "bridge"
        assert set(env.network.attrs["Containers"]) == {env.container.id, client.container.id}
        server_address, port = env.endpoint(env.ports[0])
        assert port == env.ports[0] and server_address == env.bridge_address != "127.0.0.1"
        peer_address = client.address()

        ctx = CellContext(env=env, client=client, params=TOOLS["netperf"].Params(
                             test="TCP_RR", length=2, request_size=100, response_size=200), timeout=60, label="c2c")
        raw = TOOLS["netperf"].run(ctx)
        assert raw.result.ok, raw.result.stderr
        assert f"to {server_address} () port {env.ports[1]}" in raw.text  # the banner names the data port
        rr = {m.metric: m.value for m in TOOLS["netperf"].parse(raw.text, ctx.params)}
        assert rr["transactions_per_second"] > 0
        # What the connections left (TIME-WAIT on whichever end closed first) pairs the peer's
        # address with the server's: the client ran in the peer's network namespace.
        left = sockets_between(client, server_address) + sockets_between(env, peer_address)
        assert left, "no connection between the peer container and the server"
        assert not any(peer_address in line for line in sockets_between(env, "127.0.0.1"))
        meta = env.metadata()
        assert meta["client_placement"] == "container" and meta["nat_path"] == "none"
        assert (meta["server_address"], meta["client_address"]) == (server_address, peer_address)
    finally:
        env.teardown()
    assert made_by_run(docker_client, run_id) == []


def test_c2c_runs_netperf_and_redis_cells_and_leaves_nothing(docker_client, workload_image, tiny_config, tmp_path):
    run_id = f"c2c-{os.getpid()}"
    r = bench_cli("--config-dir", str(tiny_config), "run", "--suite", "dockernet", "--env", "docker-c2c",
                  "--out", str(tmp_path), "--run-id", run_id, "--scratch", str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    df = bench.load(tmp_path / run_id)
    assert set(df.workload) == {"netperf-tcp-rr", "redis", "provision"}  # provision: the containers' start
    assert (df[df.metric == "latency_mean"].value > 0).all()
    assert set(df[df.workload == "redis"].param_clients) == {1, 10, 50}
    assert set(df.env_client) == {"container"} and set(df.env_network) == {"bridge"}
    manifest = json.loads((tmp_path / run_id / "run.json").read_text())
    meta = manifest["environments"]["docker-c2c"]["metadata"]
    assert meta["client_placement"] == "container" and meta["client_address"] != meta["server_address"]
    raw = (tmp_path / run_id / "raw" / "docker-c2c" / "netperf-tcp-rr" / "rep-1.txt").read_text()
    assert f"to {meta['server_address']} ()" in raw  # the client aimed at the server's bridge address
    assert made_by_run(docker_client, run_id) == []


def test_cleanup_removes_a_killed_c2c_run(docker_client, workload_image, tmp_path):
    run_id = f"t{os.getpid()}-c2c-killed"
    env = DockerEnvironment("docker-c2c", C2C, run_id)
    env.provision(str(tmp_path), n_ports=1)  # never torn down: as if the run was SIGKILLed
    assert sorted(x.split()[0] for x in made_by_run(docker_client, run_id)) == [
        "container", "container", "network", "volume"]
    r = bench_cli("cleanup", "--run-id", run_id)
    assert r.returncode == 0, r.stderr
    assert made_by_run(docker_client, run_id) == []


# -- swarm ---------------------------------------------------------------------------------------

def daemon_left_as_found(docker_client, run_id: str, gwbridge_before: bool) -> None:
    assert swarm.swarm_state(docker_client)[0] == "inactive"
    assert bool(swarm.gwbridges(docker_client)) == gwbridge_before
    assert made_by_run(docker_client, run_id) == []
    assert not (settings.current().swarm_markers / f"{run_id}.json").exists()
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    assert f"bench run {run_id}" not in links  # the run's veth (its alias names the run)


@pytest.fixture
def no_swarm(docker_client):
    """The Swarm tests make a swarm of their own: only on a daemon in none."""
    state, _ = swarm.swarm_state(docker_client)
    if state != "inactive":
        pytest.skip(f"dockerd is in a swarm ({state}): the swarm tests never touch one they did not make")
    return bool(swarm.gwbridges(docker_client))


# The swarm tests make the machine's one dockerd a swarm manager and leave it again: `alone`, so
# that no other test's containers meet the daemon in between (scripts/test.sh).
@pytest.mark.alone
def test_swarm_host_publishing_runs_netperf_and_leaves_the_daemon_as_it_was(
        docker_client, workload_image, no_swarm, tmp_path):
    """netperf, and a multi-tier workload (webapp: its front and Redis tiers both in the task's
    container) on a Swarm service published in host mode."""
    run_id = f"swarmhost-{os.getpid()}"
    config = _net_rr_only(tmp_path)
    (config / "suites" / "swarmtiers.yaml").write_text(
        "description: TCP_RR and a two-tier application\nprofile: quick\nrepetitions: 1\n"
        "workloads: [netperf-tcp-rr, webapp]\n")
    r = bench_cli("--config-dir", str(config), "run", "--suite", "swarmtiers", "--env", "docker-swarm-host",
                  "--out", str(tmp_path), "--run-id", run_id, "--scratch", str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    df = bench.load(tmp_path / run_id)
    assert (df[df.metric == "latency_mean"].value > 0).all() and set(df.env_kind) == {"swarm"}
    assert (df[(df.workload == "webapp") & (df.metric == "requests_per_second")].value > 0).any()
    assert not (tmp_path / run_id / "failures.jsonl").exists() or not \
        (tmp_path / run_id / "failures.jsonl").read_text().strip()
    meta = json.loads((tmp_path / run_id / "run.json").read_text())["environments"]["docker-swarm-host"]["metadata"]
    assert meta["network_mode"] == "swarm-host" and meta["published_on"] == swarm.ADVERTISE_ADDRESS
    assert meta["swarm_node_id"] and meta["service_id"]
    raw = (tmp_path / run_id / "raw" / "docker-swarm-host" / "netperf-tcp-rr" / "rep-1.txt").read_text()
    assert f"to {swarm.ADVERTISE_ADDRESS} ()" in raw
    daemon_left_as_found(docker_client, run_id, no_swarm)


def _net_rr_only(tmp_path):
    from conftest import ROOT

    dest = tmp_path / "workloads"
    if not dest.exists():
        shutil.copytree(ROOT / "workloads", dest)
        (dest / "suites" / "net.yaml").write_text("description: TCP_RR only\nprofile: quick\nrepetitions: 1\n"
                                                  "workloads: [netperf-tcp-rr]\n")
    return dest


@pytest.mark.alone
def test_swarm_mesh_is_refused_where_the_kernel_has_no_ipvs(docker_client, no_swarm, tmp_path):
    ok, why = swarm.mesh_support()
    if ok:
        pytest.skip(f"this kernel has IPVS ({why}): the mesh test runs instead")
    listed = {e["name"]: e for e in json.loads(bench_cli("list", "environments", "--json").stdout)["environments"]}
    assert not listed["docker-swarm"]["available"] and "IPVS" in listed["docker-swarm"]["reason"]
    r = bench_cli("run", "--env", "docker-swarm", "--out", str(tmp_path))
    assert r.returncode == 2 and "IPVS" in r.stderr
    assert swarm.swarm_state(docker_client)[0] == "inactive"  # refused before making anything


@pytest.mark.alone
def test_swarm_mesh_runs_netperf_through_the_routing_mesh(docker_client, workload_image, no_swarm, tmp_path):
    ok, why = swarm.mesh_support()
    if not ok:
        pytest.skip(why)
    run_id = f"swarmmesh-{os.getpid()}"
    r = bench_cli("--config-dir", str(_net_rr_only(tmp_path)), "run", "--suite", "net", "--env", "docker-swarm",
                  "--out", str(tmp_path), "--run-id", run_id, "--scratch", str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    df = bench.load(tmp_path / run_id)
    assert (df[df.metric == "latency_mean"].value > 0).all()
    daemon_left_as_found(docker_client, run_id, no_swarm)


@pytest.mark.alone
def test_a_swarm_the_run_did_not_make_is_refused_and_kept(docker_client, no_swarm, tmp_path):
    # A swarm of the test's own, on a veth of its own (never the host's real interfaces).
    veth, address = f"bswt{os.getpid() % 10**9}"[:15], "10.219.1.1"
    subprocess.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", f"{veth}p"[:15]], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{address}/30", "dev", veth], check=True)
        subprocess.run(["ip", "link", "set", veth, "up"], check=True)
        docker_client.swarm.init(advertise_addr=address, listen_addr=f"{address}:2377")
        ok, why = swarm.SwarmEnvironment.availability(swarm.SwarmEnvironment.Variant.model_validate({"publish": "host"}))
        assert not ok and "already part of a swarm" in why
        r = bench_cli("run", "--env", "docker-swarm-host", "--out", str(tmp_path))
        assert r.returncode == 2 and "bench did not make" in r.stderr
        assert "would remove swarm" not in bench_cli("cleanup", "--dry-run").stdout  # no marker: not ours
        assert swarm.swarm_state(docker_client)[0] == "active"
    finally:
        if swarm.swarm_state(docker_client)[0] != "inactive":
            docker_client.swarm.leave(force=True)
        if not no_swarm:
            for n in swarm.gwbridges(docker_client):
                n.remove()
        subprocess.run(["ip", "link", "delete", veth], check=False)


@pytest.mark.alone
def test_cleanup_leaves_the_swarm_a_killed_run_made(docker_client, workload_image, no_swarm, tmp_path):
    run_id = f"t{os.getpid()}-swarm-killed"
    env = swarm.SwarmEnvironment("docker-swarm-host", {"publish": "host"}, run_id)
    env.provision(str(tmp_path), n_ports=1)  # never torn down: as if the run was SIGKILLed
    assert env.exec(["cat", "/proc/1/comm"], timeout=30).ok  # exec'd in the task's container
    env.put_file(f"{env.workdir}/x", b"in the task\n")
    assert env.get_file(f"{env.workdir}/x") == b"in the task\n"
    assert swarm.swarm_state(docker_client)[0] == "active"
    ok, why = swarm.SwarmEnvironment.availability(swarm.SwarmEnvironment.Variant.model_validate({"publish": "host"}))
    assert not ok and f"bench cleanup --run-id {run_id}" in why
    dry = bench_cli("cleanup", "--run-id", run_id, "--dry-run")
    assert dry.returncode == 0 and "would remove swarm made by the run" in dry.stdout
    assert swarm.swarm_state(docker_client)[0] == "active"
    r = bench_cli("cleanup", "--run-id", run_id)
    assert r.returncode == 0, r.stderr
    daemon_left_as_found(docker_client, run_id, no_swarm)
    env._client.close()
    env._stream.close()


@pytest.mark.alone
def test_plain_docker_works_after_the_swarm_tests(docker_client, workload_image, tmp_path):
    """swarm init/leave changed the shared daemon for a while: the ordinary -p path still works."""
    from bench.environments import wait_for_port

    env = DockerEnvironment("docker-nat", {"network": "nat", "storage": "volume"}, f"t{os.getpid()}-after")
    try:
        env.provision(str(tmp_path), n_ports=1)
        server = env.start_server(["netserver", "-D", "-4", "-p", str(env.ports[0])], "netserver-after")
        try:
            assert wait_for_port(*env.endpoint(env.ports[0]), timeout=15)
        finally:
            server.stop()
    finally:
        env.teardown()
    assert made_by_run(docker_client, env.run_id) == []


@pytest.mark.alone
def test_sigterm_leaves_the_swarm_the_run_made(docker_client, workload_image, no_swarm, tmp_path):
    import signal
    import sys
    import time

    from conftest import ROOT

    run_id = f"swarmterm-{os.getpid()}"
    config = _net_rr_only(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "bench", "--config-dir", str(config), "run", "--suite", "net",
                             "--env", "docker-swarm-host", "--reps", "5", "--out", str(tmp_path),
                             "--run-id", run_id, "--scratch", str(tmp_path)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples = tmp_path / run_id / "samples.jsonl"
    deadline = time.monotonic() + 180
    while not (samples.exists() and samples.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert swarm.swarm_state(docker_client)[0] == "active", "the run should have its swarm by now"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]   # 128 + SIGTERM
    daemon_left_as_found(docker_client, run_id, no_swarm)


# -- NAT without docker-proxy ------------------------------------------------------------------

def dnat_packets(port: int) -> int:
    """Packets Docker's DNAT rule for `port` (tcp) has rewritten: nat table, DOCKER chain."""
    r = subprocess.run(["iptables", "-t", "nat", "-L", "DOCKER", "-v", "-n", "-x"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for line in r.stdout.splitlines():
        if f"dpt:{port} " in line + " " and "tcp" in line:
            return int(line.split()[0])
    return 0


def test_nat_dnat_client_namespace_goes_through_the_kernels_dnat(docker_client, workload_image, tmp_path):
    """The client in the run's namespace reaches the published port through PREROUTING's DNAT
    (its rule's packet counter moves); a loopback client of docker-nat does not (docker-proxy)."""
    run_id = f"t{os.getpid()}-dnat"
    env = DockerEnvironment("docker-nat-dnat", {"network": "nat", "client": "namespace", "storage": "volume"}, run_id)
    host = HostEnvironment("client", {}, run_id)
    try:
        env.provision(str(tmp_path), n_ports=2)
        namespace = env.client_ns.namespace
        address = env.publish_address
        assert ipaddress.ip_address(address) in netns.CLIENT_POOL and namespace in subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True).stdout
        ctx = CellContext(env=env, client=host, params=TOOLS["netperf"].Params(
                             test="TCP_RR", length=2, request_size=100, response_size=200), timeout=60, label="dnat")
        before = dnat_packets(env.ports[0])
        raw = TOOLS["netperf"].run(ctx)
        assert raw.result.ok, raw.result.stderr
        assert raw.result.argv[:4] == ["ip", "netns", "exec", namespace] or namespace in " ".join(raw.result.argv)
        rr = {m.metric: m.value for m in TOOLS["netperf"].parse(raw.text, ctx.params)}
        assert rr["transactions_per_second"] > 0
        assert dnat_packets(env.ports[0]) > before  # the control connection was DNATed by the kernel
        assert "iptables DNAT" in env.metadata()["nat_path"]
    finally:
        env.teardown()
    assert made_by_run(docker_client, run_id) == []
    assert namespace not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{address}/" not in subprocess.run(["ip", "-br", "addr"], capture_output=True, text=True).stdout
    # docker-nat's loopback client: docker-proxy carries it, the DNAT rule sees nothing
    nat = DockerEnvironment("docker-nat", {"network": "nat", "storage": "volume"}, run_id)
    try:
        nat.provision(str(tmp_path), n_ports=2)
        before = dnat_packets(nat.ports[0])
        raw = TOOLS["netperf"].run(CellContext(env=nat, client=host, params=ctx.params, timeout=60, label="nat"))
        assert raw.result.ok, raw.result.stderr
        assert dnat_packets(nat.ports[0]) == before and nat.metadata()["nat_path"].startswith("docker-proxy")
    finally:
        nat.teardown()
    assert made_by_run(docker_client, run_id) == []


def test_cleanup_removes_a_killed_dnat_runs_namespace(docker_client, workload_image, tmp_path):
    run_id = f"t{os.getpid()}-dnat-killed"
    env = DockerEnvironment("docker-nat-dnat", {"network": "nat", "client": "namespace", "storage": "volume"}, run_id)
    env.provision(str(tmp_path), n_ports=1)  # never torn down: as if the run was SIGKILLed
    namespace = env.client_ns.namespace
    r = bench_cli("cleanup", "--run-id", run_id)
    assert r.returncode == 0, r.stderr
    assert made_by_run(docker_client, run_id) == []
    assert namespace not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_two_client_namespaces_at_once_get_their_own_addresses():
    """Two runs with a client namespace at once (a run and a test, two users) each take a free
    pair of addresses, where a fixed one made the second fail; both go with their namespaces."""
    first, second = (netns.ClientNamespace(f"t{os.getpid()}-pair{i}", "docker-nat-dnat") for i in (1, 2))
    try:
        first.create()
        second.create()
        assert first.address != second.address
        shown = subprocess.run(["ip", "-br", "addr"], capture_output=True, text=True).stdout
        assert f"{first.address}/30" in shown and f"{second.address}/30" in shown
    finally:
        first.delete()
        second.delete()
    shown = subprocess.run(["ip", "-br", "addr"], capture_output=True, text=True).stdout
    assert f"{first.address}/" not in shown and f"{second.address}/" not in shown
