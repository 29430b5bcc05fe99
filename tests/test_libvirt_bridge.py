"""A guest on a bridge inside a network namespace the run makes (network: bridge), under TCG.

Every packet here stays inside namespaces these tests make: the client runs in the guest's
namespace through client_command(); nothing is ever sent to 10.213.x from the root namespace.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from bench import cleanup
from bench.environments import libvirt as lv
from bench.environments import netns
from bench.environments.host import run_argv
from bench.errors import BenchError
from bench.workloads.netperf import Netperf

from conftest import bench_cli
from test_libvirt import domains_of

pytestmark = pytest.mark.integration

VARIANT = {"accel": "tcg", "network": "bridge"}


def links(*where: str) -> list[dict]:
    return json.loads(subprocess.run(["ip", "-j", *where, "link", "show"], capture_output=True, text=True,
                                     check=True).stdout)


@pytest.fixture(scope="module")
def bridged(vm_image, tmp_path_factory):
    """One bridged TCG guest for the whole module: it boots once."""
    env = lv.LibvirtEnvironment("tcg-bridge", VARIANT, f"t{os.getpid()}-br", allow_tcg=True)
    env.provision(str(tmp_path_factory.mktemp("scratch")), n_ports=2)
    namespace = env.bridge.namespace
    yield env
    env.teardown()
    assert namespace not in netns.namespaces()
    assert env.bridge.tap not in [l["ifname"] for l in links()]
    assert domains_of(env.run_id) == []


def test_guest_sits_on_a_bridge_in_the_runs_own_namespace(bridged):
    ns = bridged.bridge.namespace
    assert ns == f"bench-{bridged.run_id}-tcg-bridge" and ns in netns.namespaces()
    # the tap left the root namespace and is a port of the bridge inside
    inside = {l["ifname"]: l for l in links("-n", ns)}
    assert inside[bridged.bridge.tap].get("master") == netns.BRIDGE
    assert bridged.bridge.tap not in [l["ifname"] for l in links()]
    # the private addresses exist inside the namespace only
    root_addrs = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    assert "10.213." not in root_addrs
    assert "10.213.0.1/24" in subprocess.run(["ip", "-n", ns, "-4", "-o", "addr"], capture_output=True,
                                             text=True).stdout
    guest = bridged.exec(["ip", "-4", "-o", "addr", "show"], timeout=60).stdout
    assert " 10.213.0.2/24 " in guest
    # no way out of the namespace: the guest has no default route
    assert "default" not in bridged.exec(["ip", "route"], timeout=60).stdout


def test_every_sample_says_bridge_without_vhost_under_tcg(bridged):
    variant = bridged.effective_variant()
    assert (variant["accel"], variant["network"], variant["vhost"]) == ("tcg", "bridge", False)
    meta = bridged.metadata()
    assert meta["vhost_net"] is False and bridged.bridge.namespace in meta["network_mode"]
    nic = [i for i in bridged.domain.XMLDesc().split("<interface")[1:]]
    assert len(nic) == 1 and "type='ethernet'" in nic[0] and "<driver name='qemu'" in nic[0]


def test_client_in_the_namespace_reaches_netserver_in_the_guest(bridged):
    control, data = bridged.ports
    server = bridged.start_server(["netserver", "-D", "-4", "-L", bridged.listen_address, "-p", str(control)],
                                  "ns")
    try:
        assert bridged.wait_listening(control, timeout=60)
        address, port = bridged.endpoint(control)
        assert address == "10.213.0.2"
        argv = Netperf.client_argv(Netperf.Params(test="TCP_RR", length=5), address, port, bridged.endpoint(data)[1])
        command = bridged.client_command(argv)
        assert command[:4] == ["ip", "netns", "exec", bridged.bridge.namespace]
        r = run_argv(command, timeout=60)
        assert r.ok, r.stderr
        got = {m.metric: m.value for m in Netperf.parse(r.stdout, Netperf.Params(test="TCP_RR", length=5))}
        print(f"TCG bridge TCP_RR: {got['transactions_per_second']:.1f} trans/s, "
              f"mean latency {got['latency_mean']:.0f} us")
        assert got["transactions_per_second"] > 0 and got["latency_mean"] > 0
    finally:
        server.stop()


def test_a_failed_provision_leaves_no_namespace_tap_domain_or_disk(vm_image, tmp_path, monkeypatch):
    def no_agent(self, start):
        raise BenchError("the guest agent did not answer (simulated)")

    monkeypatch.setattr(lv.LibvirtEnvironment, "_wait_for_agent", no_agent)
    env = lv.LibvirtEnvironment("tcg-bridge", VARIANT, f"t{os.getpid()}-brfail", allow_tcg=True)
    with pytest.raises(BenchError, match="simulated"):
        env.provision(str(tmp_path), n_ports=2)
    assert [l.name for l in cleanup._netns_leftovers(env.run_id)] == []
    assert domains_of(env.run_id) == []
    assert "console.log" in env.artifacts()  # kept for the run folder though its disk folder is gone


def test_cleanup_removes_a_killed_runs_namespace_and_stray_tap(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    run_id = f"t{os.getpid()}-killed"
    killed = netns.BridgeNetwork(run_id, "kvm-bridge")
    other = netns.BridgeNetwork(f"{run_id}-2", "kvm-bridge")  # an id that begins with the first's
    try:
        # As a run SIGKILLed while its guest started: namespace and bridge made, tap not yet moved.
        killed.create()
        other.create()
        dry = bench_cli("cleanup", "--run-id", run_id, "--dry-run").stdout
        assert f"would remove network namespace {killed.namespace} (run {run_id})" in dry
        assert f"would remove tap {killed.tap} (run {run_id})" in dry
        assert other.namespace not in dry and other.tap not in dry
        assert killed.namespace in netns.namespaces()  # a dry run removes nothing
        assert bench_cli("cleanup", "--run-id", run_id).returncode == 0
        assert killed.namespace not in netns.namespaces()
        assert killed.tap not in [l["ifname"] for l in links()]
        assert other.namespace in netns.namespaces()
    finally:
        killed.delete()
        other.delete()
    assert other.namespace not in netns.namespaces()
