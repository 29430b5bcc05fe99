"""Nothing a run starts listens beyond what it intends: every listening socket of the machine
(`ss -ltnup`, TCP and UDP) is read many times a second during a real run of netperf (TCP_RR,
UDP_RR), Redis and MariaDB on the host and in Docker with --net=host (the two that share the
host's network stack, where a wildcard bind is open to the lab's network), and any socket of a
process the run started bound to a wildcard address fails the test. MariaDB's unix socket, with
a scratch folder too deep for one, is in a private 0700 folder, never at a fixed path in /tmp."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bench
from bench import cleanup

from conftest import ROOT

pytestmark = pytest.mark.integration
RUN = f"listen-{os.getpid()}"   # machine-wide names: unique per session
WILDCARDS = {"0.0.0.0", "*", "[::]", "::", "[::ffff:0.0.0.0]"}
USERS = re.compile(r'\("([^"]+)",pid=(\d+),fd=\d+\)')


def docker_ok() -> bool:
    from bench.environments.docker import DockerEnvironment

    return DockerEnvironment.availability(DockerEnvironment.Variant())[0]


@pytest.fixture
def servers_suite(config_copy: Path) -> Path:
    (config_copy / "catalogue" / "listen.yaml").write_text(
        "np-tcp:\n  tool: netperf\n  warmups: 0\n  params: {test: TCP_RR, length: 2}\n"
        "np-udp:\n  tool: netperf\n  warmups: 0\n  params: {test: UDP_RR, length: 2}\n"
        "redis-small:\n  tool: redis\n  warmups: 0\n"
        "  params: {tests: [get], requests: 5000, keyspace: 1000, clients: [1]}\n"
        "mariadb-small:\n  tool: mariadb\n  warmups: 0\n"
        "  params: {table_size: 1000, threads: [1], time: 1, warmup: 1, buffer_pool: 128M}\n")
    (config_copy / "suites" / "listen.yaml").write_text(
        "repetitions: 1\nworkloads: [np-tcp, np-udp, redis-small, mariadb-small]\n")
    return config_copy


def ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        chain.append(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            break
        pid = int(fields[1])
    return chain


def listening() -> list[tuple[str, str, str, int]]:
    """(protocol, local address, command, pid) of every listening socket of the host's stack."""
    out = subprocess.run(["ss", "-ltnupH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 6:
            continue
        address = fields[4].rsplit(":", 1)[0].split("%")[0]
        for command, pid in USERS.findall(line):
            found.append((fields[0], address, command, int(pid)))
    return found


@pytest.mark.skipif(not docker_ok() and not os.environ.get("CI"), reason="dockerd is not running")
def test_no_server_of_a_run_listens_on_a_wildcard_address(servers_suite, tmp_path, docker_client):
    from bench.environments.docker import LABEL_RUN

    # Deep enough that mariadbd's socket cannot be in the repetition's folder (107 bytes at most).
    scratch = tmp_path / ("deep-" * 12) / "scratch"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "--config-dir", str(servers_suite), "run",
                             "--suite", "listen", "--env", "host,docker-host", "--out", str(tmp_path),
                             "--run-id", RUN, "--scratch", str(scratch)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[tuple[str, str, str], int] = {}    # (protocol, address, command) -> pid, of the run's
    sockets: dict[str, int] = {}                  # mariadbd's socket -> its folder's mode
    try:
        deadline = time.monotonic() + 900
        while proc.poll() is None:
            assert time.monotonic() < deadline, "the run did not end"
            roots = {proc.pid} | {c.attrs["State"]["Pid"] for c in docker_client.containers.list(
                filters={"label": f"{LABEL_RUN}={RUN}"}) if c.attrs["State"]["Pid"]}
            for protocol, address, command, pid in listening():
                if roots & set(ancestors(pid)):
                    seen.setdefault((protocol, address, command), pid)
                    if command == "mariadbd":
                        try:
                            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
                        except OSError:
                            continue
                        for socket in (a.split("=", 1)[1] for a in argv if a.startswith("--socket=")):
                            with contextlib.suppress(OSError):   # its own file system's view
                                sockets[socket] = stat.S_IMODE(Path(f"/proc/{pid}/root{socket}").parent.stat().st_mode)
            time.sleep(0.05)
        out, err = proc.communicate()
        assert proc.returncode == 0, err[-3000:]
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=120)
        for leftover in cleanup.find(RUN, scratch):
            leftover.remove()
    commands = {command for _, _, command in seen}
    assert {"netserver", "redis-server", "mariadbd"} <= commands, seen   # the look saw every server
    assert any(protocol == "udp" for protocol, _, command in seen if command == "netserver"), seen
    wild = {key: pid for key, pid in seen.items() if key[1] in WILDCARDS}
    assert wild == {}, f"bound to a wildcard address: {wild}"
    df = bench.load(tmp_path / RUN)
    assert set(df.workload) >= {"np-tcp", "np-udp", "redis-small", "mariadb-small"}

    assert sockets, "mariadbd's socket was never seen"
    for socket, mode in sockets.items():
        assert not re.fullmatch(r"/tmp/bench-mariadb-\d+\.sock", socket), socket
        assert Path(socket).parent != Path("/tmp") and mode == 0o700, (socket, oct(mode))
        assert not Path(socket).parent.exists(), socket   # the host's: removed after
