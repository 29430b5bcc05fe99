"""netperf's request/response and bulk-transfer tests: parser on recorded outputs, parameters,
and the real thing through bench's CLI on the host and behind Docker's NAT."""

from __future__ import annotations

import re
import time
from pathlib import Path

import psutil
import pytest
import yaml

import bench
from bench import hostcpu
from bench.environments.host import free_loopback_ports
from bench.errors import ToolError
from bench.workloads import TOOLS
from bench.workloads.netperf import NetperfParams

STREAM = NetperfParams(test="TCP_STREAM")

from conftest import bench_cli, recorded, short_tools, tools_of

netperf = TOOLS["netperf"]


def by_metric(measurements):
    return {m.metric: m for m in measurements}


def keyvals(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Z0-9_]+)=(.*)$", text, re.MULTILINE))


# -- parser ---------------------------------------------------------------------------------

def test_udp_rr_is_read_like_tcp_rr():
    ms = by_metric(netperf.parse(recorded("netperf", "udp-rr-keyval.txt"), NetperfParams(test="UDP_RR")))
    assert ms["transactions_per_second"].value == pytest.approx(16349.10)
    assert ms["latency_mean"].value == pytest.approx(61.06) and ms["latency_mean"].unit == "us"
    assert ms["latency_p99"].value == pytest.approx(654) and ms["latency_p99"].better == "lower"
    assert "throughput_mbps" not in ms


@pytest.mark.parametrize("name, mbps, busy, counted", [
    ("tcp-stream-keyval.txt", 4643.80, 10.26, "LOCAL_BYTES_SENT"),
    ("tcp-maerts-keyval.txt", 4611.51, 10.28, "REMOTE_BYTES_SENT"),
])
def test_stream_throughput_and_host_cpu_per_byte(name, mbps, busy, counted):
    text = recorded("netperf", name)
    ms = by_metric(netperf.parse(text, NetperfParams(test="TCP_" + name.split("-")[1].upper())))
    assert set(ms) == {"throughput_mbps", "cpu_ns_per_byte", "cycles_per_byte"}
    assert ms["throughput_mbps"].value == pytest.approx(mbps) and ms["throughput_mbps"].better == "higher"
    # Bytes from rate x time agree with what the sender counted (netperf's Mbit/s are 10^6).
    moved = mbps * 1e6 / 8 * float(keyvals(text)["ELAPSED_TIME"])
    assert moved == pytest.approx(int(keyvals(text)[counted]), rel=0.01)
    assert ms["cpu_ns_per_byte"].value == pytest.approx(busy * 1e9 / moved)
    assert ms["cycles_per_byte"].value == pytest.approx(busy * 2445.4e6 / moved)
    assert ms["cycles_per_byte"].better == ms["cpu_ns_per_byte"].better == "lower"
    # Loopback on 2 CPUs: both ends keep the machine busy, a few cycles per byte.
    assert 1 < ms["cycles_per_byte"].value < 100


def test_stream_without_bench_cpu_lines_is_refused():
    text = recorded("netperf", "tcp-stream-keyval.txt")
    bare = "\n".join(line for line in text.splitlines() if not line.startswith("BENCH_"))
    with pytest.raises(ToolError, match="BENCH_HOST_CPU_BUSY_SECONDS"):
        netperf.parse(bare, STREAM)


def test_stream_on_a_host_without_a_clock_has_no_cycles():
    text = re.sub(r"^BENCH_HOST_CPU_MHZ=.*$", "BENCH_HOST_CPU_MHZ=0.0", recorded("netperf", "tcp-stream-keyval.txt"),
                  flags=re.MULTILINE)
    assert set(by_metric(netperf.parse(text, STREAM))) == {"throughput_mbps", "cpu_ns_per_byte"}


@pytest.mark.parametrize("name", ["tcp-stream-server-killed.txt", "no-netserver.txt"])
def test_failed_runs_raise(name):
    with pytest.raises(ToolError, match="no THROUGHPUT"):
        netperf.parse(recorded("netperf", name), STREAM)


def test_garbled_stream_value_raises():
    text = recorded("netperf", "tcp-stream-keyval.txt").replace("ELAPSED_TIME=5.02", "ELAPSED_TIME=n/a")
    with pytest.raises(ToolError, match="garbled"):
        netperf.parse(text, STREAM)


def test_unknown_unit_raises():
    with pytest.raises(ToolError, match="unit"):
        netperf.parse("THROUGHPUT=12\nTHROUGHPUT_UNITS=KBytes/s\n", STREAM)


# -- parameters and command line --------------------------------------------------------------

def argv(**params):
    return netperf.client_argv(NetperfParams(**params), "127.0.0.1", 1000, 1001)


def test_command_lines():
    rr = argv(test="UDP_RR", length=5)
    assert rr[rr.index("-r"):rr.index("-k")] == ["-r", "100,200", "-P", ",1001"]
    stream = argv(test="TCP_STREAM", length=5)
    assert stream[stream.index("--"):stream.index("-P")] == ["--", "-s", "4194304", "-S", "4194304", "-m", "65536"]
    # MAERTS: netserver sends, so its send size is the one set (`-m ,N`).
    maerts = argv(test="TCP_MAERTS", send_size=16384)
    assert maerts[maerts.index("-m") + 1] == ",16384" and "-t" in maerts and "TCP_MAERTS" in maerts


def test_the_data_connection_is_bound_where_the_server_listens():
    # netserver's -L binds its control socket only: its data socket listens where the client's
    # test-specific -H says (else on 0.0.0.0), and a UDP client's own socket where its -L says.
    for test in ("TCP_RR", "UDP_RR", "TCP_STREAM"):
        bound = netperf.client_argv(NetperfParams(test=test), "127.0.0.1", 1000, 1001, server_binds=True)
        specific = bound[bound.index("--"):]
        assert specific[specific.index("-H") + 1] == "127.0.0.1" and specific[specific.index("-L") + 1] == "127.0.0.1"
    # a server in a namespace of its own listens on its wildcard, reached through NAT at another address
    nat = netperf.client_argv(NetperfParams(test="TCP_RR"), "10.1.2.3", 1000, 1001)
    assert "-H" not in nat[nat.index("--"):] and "-L" not in nat[nat.index("--"):]


def test_each_test_gets_only_its_own_sizes():
    rr = NetperfParams(test="UDP_RR")
    assert (rr.request_size, rr.response_size, rr.send_size, rr.socket_buffer) == (100, 200, None, None)
    stream = NetperfParams(test="TCP_MAERTS")
    assert (stream.request_size, stream.send_size, stream.socket_buffer) == (None, 65536, 4 << 20)
    with pytest.raises(ValueError, match="request_size is for TCP_RR and UDP_RR only"):
        NetperfParams(test="TCP_STREAM", request_size=100)
    with pytest.raises(ValueError, match="socket_buffer is for TCP_STREAM and TCP_MAERTS only"):
        NetperfParams(test="TCP_RR", socket_buffer=1 << 20)


def test_a_mismatched_size_in_the_catalogue_is_one_line(config_copy):
    path = config_copy / "catalogue" / "netperf.yaml"
    cat = yaml.safe_load(path.read_text())
    cat["netperf-tcp-stream"]["params"]["request_size"] = 100
    path.write_text(yaml.safe_dump(cat))
    r = bench_cli("--config-dir", str(config_copy), "list")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "netperf-tcp-stream" in r.stderr and "request_size is for TCP_RR and UDP_RR only" in r.stderr


def test_catalogue_entries():
    cat = yaml.safe_load((Path(bench.__file__).parent.parent / "workloads" / "catalogue" / "netperf.yaml").read_text())
    for name, test in [("netperf-udp-rr", "UDP_RR"), ("netperf-tcp-stream", "TCP_STREAM"),
                       ("netperf-tcp-maerts", "TCP_MAERTS")]:
        assert cat[name]["params"]["test"] == test
        assert cat[name]["profiles"] == {"quick": {"length": 3}, "lab": {"length": 60}}


# -- host counters and ports ------------------------------------------------------------------

def test_host_busy_time_counts_work():
    before = hostcpu.cpu_times()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        pass
    after = hostcpu.cpu_times()
    assert 0.4 <= after.busy - before.busy <= 0.5 * (psutil.cpu_count() or 1) + 0.2
    assert hostcpu.mean_mhz() > 0 or "cpu MHz" not in Path("/proc/cpuinfo").read_text()


def test_loopback_ports_are_free_for_udp_too():
    import socket

    ports = free_loopback_ports(4)
    assert len(set(ports)) == 4
    for p in ports:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as s:
                s.bind(("127.0.0.1", p))


# -- the real thing ---------------------------------------------------------------------------

TOOL_PROCESSES = {"netserver", "netperf"}


def run_tiny_suite(config_copy: Path, tmp_path: Path, envs: str, run_id: str):
    (config_copy / "suites" / "netperf-tiny.yaml").write_text(yaml.safe_dump({
        "description": "netperf UDP_RR and TCP_STREAM, once", "profile": "quick", "repetitions": 1,
        "workloads": ["netperf-udp-rr", "netperf-tcp-stream"]}))
    r = bench_cli("--config-dir", str(short_tools(config_copy)), "run", "--suite", "netperf-tiny", "--env", envs,
                  "--reps", "1", "--out", str(tmp_path / "out"), "--run-id", run_id,
                  "--scratch", str(tmp_path / "scratch"))
    assert r.returncode == 0, r.stderr[-3000:]
    time.sleep(0.5)
    assert tools_of(tmp_path / "scratch", TOOL_PROCESSES) == {}
    assert list((tmp_path / "scratch").iterdir()) == []
    return bench.load(tmp_path / "out" / run_id)


def check_samples(df, env: str) -> dict[str, float]:
    rows = df[df.environment == env]
    got = {m: float(rows[rows.metric == m].value.iloc[0]) for m in
           ("transactions_per_second", "latency_mean", "throughput_mbps", "cpu_ns_per_byte", "cycles_per_byte")}
    assert all(v > 0 for v in got.values()), got
    assert got["latency_mean"] < 1e5  # under 0.1 s a round trip, even on a loaded 2-core machine
    assert set(rows[rows.metric == "latency_mean"].workload) == {"netperf-udp-rr"}
    assert set(rows[rows.metric == "throughput_mbps"].workload) == {"netperf-tcp-stream"}
    print(env, got)  # pytest -s shows the numbers
    return got


@pytest.mark.integration
def test_udp_rr_and_stream_on_the_host(config_copy, tmp_path):
    df = run_tiny_suite(config_copy, tmp_path, "host", "netperf-host")
    check_samples(df, "host")


@pytest.mark.integration
def test_udp_rr_and_stream_through_docker_nat(config_copy, tmp_path):
    from bench.environments.docker import LABEL_RUN, DockerEnvironment, client

    ok, why = DockerEnvironment.availability(DockerEnvironment.Variant())
    if not ok:
        pytest.skip(why)
    df = run_tiny_suite(config_copy, tmp_path, "host,docker-nat", "netperf-nat")
    host, nat = check_samples(df, "host"), check_samples(df, "docker-nat")
    # UDP through docker-proxy: a user-space relay, never faster than loopback by much.
    assert nat["latency_mean"] > 0.5 * host["latency_mean"]
    c = client()
    try:
        assert c.containers.list(all=True, filters={"label": f"{LABEL_RUN}=netperf-nat"}) == []
        assert c.volumes.list(filters={"label": f"{LABEL_RUN}=netperf-nat"}) == []
    finally:
        c.close()
