"""--client-host: the clients of client/server workloads on a second host, over SSH.

The second host is made here, for real, and only here: a network namespace joined to this one
by a veth pair, with an sshd of the test's own inside it (its own host key, root login by a
freshly made key only). Nothing is sent to any address but the two ends of that veth pair, and
the namespace, the pair and the sshd are removed whatever happens.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import pytest

import bench
from bench.environments.docker import LABEL_RUN
from bench import cleanup
from bench.environments.remote import (RemoteHost, check_destination, check_ssh_option, control_folders,
                                       preflight, remote_command, ssh_argv)
from bench.environments.netns import ip as _ip
from bench.errors import BenchError

from conftest import bench_cli

SSHD = "/usr/sbin/sshd"
SESSION = f"t{os.getpid():x}"  # machine-wide names: unique per test session


@dataclasses.dataclass
class SecondHost:
    namespace: str
    host_address: str      # this host's end of the veth pair
    address: str           # the second host's (inside the namespace)
    key: Path              # the client's private key
    known_hosts: Path
    sshd: subprocess.Popen
    sshd_log: Path

    @property
    def destination(self) -> str:
        return f"root@{self.address}"

    @property
    def options(self) -> tuple[str, ...]:
        return (f"IdentityFile={self.key}", f"UserKnownHostsFile={self.known_hosts}")

    def cli_args(self) -> list[str]:
        return ["--client-host", self.destination,
                *[a for o in self.options for a in ("--ssh-option", o)]]

    def pids(self) -> set[int]:
        """Every process in the namespace: the sshd, and whatever sessions it still serves."""
        r = subprocess.run(["ip", "netns", "pids", self.namespace], capture_output=True, text=True, timeout=10)
        return {int(p) for p in r.stdout.split()}


def _free_subnet() -> int:
    """A 10.215.N.0/30 that no interface or route of this machine uses yet."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    used += subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for n in random.sample(range(1, 255), 254):
        if f"10.215.{n}." not in used:
            return n
    pytest.skip("no free 10.215.N.0/30 here")


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench-test", "-f", str(path)],
                   check=True, timeout=30)


@pytest.fixture(scope="module")
def second_host(tmp_path_factory):
    if not os.path.exists(SSHD):
        if os.environ.get("CI"):
            pytest.fail("CI must run the --client-host tests: install openssh-server (scripts/setup.sh)")
        pytest.skip("no sshd: apt-get install openssh-server")
    folder = tmp_path_factory.mktemp("second-host")
    n = _free_subnet()
    namespace = f"bench-{SESSION}-client"
    veth, peer = f"bcl{SESSION[-6:]}h", f"bcl{SESSION[-6:]}c"
    host_address, address = f"10.215.{n}.1", f"10.215.{n}.2"
    sshd = None
    try:
        _ip("netns", "add", namespace)
        _ip("link", "add", veth, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", namespace)
        _ip("addr", "add", f"{host_address}/30", "dev", veth)
        _ip("link", "set", veth, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        _ip("-n", namespace, "addr", "add", f"{address}/30", "dev", peer)
        _ip("-n", namespace, "link", "set", peer, "up")

        _keygen(folder / "host_key")
        _keygen(folder / "client_key")
        (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
        host_key = (folder / "host_key.pub").read_text().split()
        (folder / "known_hosts").write_text(f"{address} {host_key[0]} {host_key[1]}\n")
        config = folder / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress {address}", "Port 22", f"HostKey {folder / 'host_key'}",
            f"AuthorizedKeysFile {folder / 'authorized_keys'}",
            "PermitRootLogin prohibit-password", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no",
            "StrictModes no",   # pytest's folders sit under the world-writable /tmp
            "PidFile none", "MaxSessions 50", "MaxStartups 50", "LogLevel VERBOSE", ""]))
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation folder
        log = folder / "sshd.log"
        with open(log, "wb") as f:
            # ip netns exec becomes sshd (same pid); its own session, so its children go with it.
            sshd = subprocess.Popen(["ip", "netns", "exec", namespace, SSHD, "-D", "-e", "-f", str(config)],
                                    stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection((address, 22), timeout=1):
                    break
            except OSError:
                if sshd.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the test's sshd did not start: {log.read_text()}")
                time.sleep(0.1)
        yield SecondHost(namespace, host_address, address, folder / "client_key", folder / "known_hosts",
                         sshd, log)
    finally:
        if sshd is not None and sshd.poll() is None:
            os.killpg(sshd.pid, signal.SIGTERM)
            try:
                sshd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(sshd.pid, signal.SIGKILL)
                sshd.wait()
        subprocess.run(["ip", "netns", "delete", namespace], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "delete", veth], capture_output=True, timeout=30)  # if it never moved
    # After the teardown, on success and on failure alike: nothing of it is left.
    assert not Path(f"/run/netns/{namespace}").exists()
    assert subprocess.run(["ip", "link", "show", veth], capture_output=True).returncode != 0
    assert sshd is None or not psutil.pid_exists(sshd.pid) or psutil.Process(sshd.pid).status() == psutil.STATUS_ZOMBIE


def cmdline(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:  # gone meanwhile
        return ""


def masters(run_id: str) -> list[int]:
    """Local ssh processes of a run (its master connection's socket path carries the run id)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["name"] == "ssh" and f"bench-{run_id}-ssh-" in cmdline:
            found.append(proc.pid)
    return found


def settle(second_host: SecondHost, timeout: float = 10) -> set[int]:
    """The namespace's processes once sessions that just ended have gone (sshd's own is left)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = second_host.pids()
        if pids == {second_host.sshd.pid} or time.monotonic() > deadline:
            return pids
        time.sleep(0.2)


# -- the ssh command line ------------------------------------------------------------------------


def test_ssh_argv_puts_bench_options_first_and_the_destination_last():
    argv = ssh_argv("root@lab2", ("IdentityFile=/k", "ConnectTimeout=3"), control_path="/tmp/x/master")
    assert argv[:3] == ["ssh", "-o", "BatchMode=yes"]
    assert argv[-2:] == ["--", "root@lab2"]
    options = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    # ssh keeps an option's first value: the user's ConnectTimeout wins over bench's default,
    # bench's control options over anything after them.
    assert options.index("ControlPath=/tmp/x/master") < options.index("IdentityFile=/k")
    assert options.index("ConnectTimeout=3") < options.index("ConnectTimeout=10")
    assert "ControlMaster=no" in options and "-n" in argv
    master = ssh_argv("lab2", (), control_path="/tmp/x/master", master=True)
    assert "ControlMaster=yes" in master and "-N" in master and "-n" not in master


def test_remote_command_quotes_every_word():
    command = remote_command(["echo", "a b", "$HOME", "it's", "; rm -rf /"], timeout=7.2, cwd="/tmp/a dir")
    assert command == ("cd '/tmp/a dir' && timeout -k 5 7 echo 'a b' '$HOME' 'it'\"'\"'s' '; rm -rf /'")


@pytest.mark.parametrize("destination", ["-oProxyCommand=x", "root@host;ls", "a b", ""])
def test_a_destination_ssh_could_misread_is_refused(destination):
    with pytest.raises(BenchError, match="is not \\[USER@\\]HOST"):
        check_destination(destination)


@pytest.mark.parametrize("option, message", [
    ("IdentityFile", "is not KEY=VALUE"), ("=x", "is not KEY=VALUE"),
    ("ControlPath=/tmp/s", "bench sets it itself"), ("batchmode=no", "bench sets it itself")])
def test_bad_ssh_options_are_refused(option, message):
    with pytest.raises(BenchError, match=message):
        check_ssh_option(option)
    assert check_ssh_option("UserKnownHostsFile=/tmp/k h") == "UserKnownHostsFile=/tmp/k h"


def test_ssh_option_without_client_host_and_bridge_are_one_line_errors(tmp_path):
    r = bench_cli("run", "--suite", "net", "--env", "host", "--ssh-option", "Port=22", "--out", str(tmp_path))
    assert r.returncode == 2 and "give --client-host" in r.stderr and "Traceback" not in r.stderr
    # Refused before anything connects or is made: no ssh to this (unused) documentation address.
    r = bench_cli("run", "--suite", "net", "--env", "kvm-bridge", "--allow-tcg", "--client-host", "root@192.0.2.1",
                  "--out", str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert "environment 'kvm-bridge' cannot serve a client on another host" in r.stderr
    assert "Traceback" not in r.stderr


def test_client_host_needs_a_client_server_workload(tmp_path):
    r = bench_cli("run", "--suite", "cpu", "--env", "host", "--client-host", "root@192.0.2.1", "--out", str(tmp_path))
    assert r.returncode == 2 and "suite cpu has none" in r.stderr


# -- against the second host ---------------------------------------------------------------------


@pytest.mark.integration
def test_unreachable_client_host_is_one_line_error(second_host, tmp_path):
    # The second host's own address, on a port nothing listens on: refused at once.
    with pytest.raises(BenchError, match=r"cannot reach client host root@10\.215\.\d+\.2 over ssh: .*refused"):
        preflight(second_host.destination, (*second_host.options, "Port=2200"), {"netperf": "netperf"})
    r = bench_cli("run", "--suite", "net", "--env", "host", *second_host.cli_args(), "--ssh-option", "Port=2200",
                  "--out", str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("bench: error: cannot reach client host") and r.stderr.count("\n") == 1
    assert not list(tmp_path.iterdir())  # refused before a run folder was made


@pytest.mark.integration
def test_unknown_host_key_says_how_to_trust_it(second_host, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(BenchError, match="Host key verification failed.*UserKnownHostsFile"):
        preflight(second_host.destination, (f"IdentityFile={second_host.key}", f"UserKnownHostsFile={empty}"), {})


@pytest.mark.integration
def test_preflight_names_a_missing_client_program_and_its_package(second_host):
    with pytest.raises(BenchError, match=r"missing on client host root@10\.215\.\d+\.2: bench-no-such-tool; "
                                         r"install it there with `apt-get install bench-no-such-package`"):
        preflight(second_host.destination, second_host.options,
                  {"netperf": "netperf", "bench-no-such-tool": "bench-no-such-package"})


@pytest.mark.integration
def test_preflight_finds_the_address_facing_the_client(second_host):
    client = preflight(second_host.destination, second_host.options, {"netperf": "netperf"})
    assert client.address == second_host.address
    assert client.publish_address == second_host.host_address  # `ip route get` -> src


@pytest.mark.integration
def test_remote_host_runs_argv_there_through_one_master(second_host, tmp_path):
    client = preflight(second_host.destination, second_host.options, {})
    run_id = f"{SESSION}-remote"
    remote = RemoteHost(client, run_id)
    try:
        remote.provision(str(tmp_path), 0)
        assert masters(run_id) == [remote.master_pid]
        # The words arrive as they were, unexpanded, and the command ran in the namespace.
        odd = ["a b", "$HOME", "it's", "*", "; echo pwned", ""]
        r = remote.exec(["python3", "-c", "import sys, json; print(json.dumps(sys.argv[1:]))", *odd], timeout=30)
        assert r.ok, r.stderr
        assert json.loads(r.stdout) == odd
        r = remote.exec(["ip", "-4", "-o", "addr", "show", "scope", "global"], timeout=30)
        assert second_host.address in r.stdout and second_host.host_address not in r.stdout
        assert remote.exec(["sh", "-c", "exit 3"], timeout=30).returncode == 3
        assert remote.exec(["pwd"], timeout=30, cwd="/usr").stdout.strip() == "/usr"

        path = f"{remote.workdir}/sub dir/file"
        remote.put_file(path, b"\x00bytes\nand more")
        assert remote.get_file(path) == b"\x00bytes\nand more"
        with pytest.raises(FileNotFoundError):
            remote.get_file(f"{remote.workdir}/missing")
        assert remote.has_program("netperf") and not remote.has_program("bench-no-such-tool")

        # A command past its timeout is killed over there, not only its local ssh.
        marker = f"59.{os.getpid()}"  # seconds: a sleep of this test's own
        start = time.monotonic()
        r = remote.exec(["sleep", marker], timeout=2)
        assert r.timed_out and r.returncode is None and time.monotonic() - start < 15
        assert not [p for p in second_host.pids() if marker in cmdline(p)]

        # Many execs cost one connection: sshd accepted a single public-key login for them.
        logins = second_host.sshd_log.read_text().count("Accepted publickey")
        for _ in range(5):
            assert remote.exec(["true"], timeout=30).ok
        assert second_host.sshd_log.read_text().count("Accepted publickey") == logins

        meta = remote.metadata()
        assert meta["addresses"] == f"{second_host.address}/30"
        assert meta["address"] == second_host.address and meta["ssh_destination"] == second_host.destination
        assert meta["kernel"] == os.uname().release and meta["cpu_model_name"] != "unavailable"
        assert all(v not in ("", None) for v in meta.values())
        workdir = remote.workdir
    finally:
        remote.teardown()
    assert not os.path.exists(workdir)  # the namespace shares this file system
    assert masters(run_id) == [] and control_folders(run_id) == []
    assert settle(second_host) == {second_host.sshd.pid}


NETPERF = """
remote-tcp-rr:
  tool: netperf
  warmups: 0
  params: {test: TCP_RR, request_size: 100, response_size: 200, length: 2}
"""
REDIS = """
remote-redis:
  tool: redis
  warmups: 0
  params: {tests: [get, set], data_size: 50, keyspace: 1000, requests: 2000, clients: [1, 4]}
"""


@pytest.mark.integration
def test_run_with_clients_on_the_second_host(second_host, docker_client, config_copy, tmp_path):
    (config_copy / "suites" / "remote.yaml").write_text(
        "profile: quick\nrepetitions: 1\nworkloads: [remote-tcp-rr, remote-redis]\n")
    for name, entry in (("netperf", NETPERF), ("redis", REDIS)):
        with open(config_copy / "catalogue" / f"{name}.yaml", "a") as f:
            f.write(entry)
    run_id = f"{SESSION}-client-run"
    logins = second_host.sshd_log.read_text().count("Accepted publickey")
    r = bench_cli("run", "--suite", "remote", "--env", "host,docker-nat", *second_host.cli_args(),
                  "--out", str(tmp_path), "--run-id", run_id, env={"BENCH_CONFIG_DIR": str(config_copy)})
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"clients on {second_host.destination}" in r.stderr

    df = bench.load(tmp_path / run_id)
    for env in ("host", "docker-nat"):
        rr = df[(df.environment == env) & (df.metric == "transactions_per_second")]
        assert len(rr) == 1 and rr.value.iloc[0] > 0
        redis = df[(df.environment == env) & (df.workload == "remote-redis") & (df.metric == "get_requests_per_second")]
        assert sorted(redis.param_clients) == [1, 4] and (redis.value > 0).all()

    manifest = json.loads((tmp_path / run_id / "run.json").read_text())
    client = manifest["client"]
    assert client["kind"] == "remote" and client["host"] == second_host.destination
    assert client["address"] == second_host.address
    assert client["publish_address"] == second_host.host_address
    assert client["metadata"]["addresses"] == f"{second_host.address}/30"
    assert manifest["client_tool_versions"]["netperf"].startswith("Netperf version")
    for env in ("host", "docker-nat"):
        assert manifest["environments"][env]["publish_address"] == second_host.host_address
    assert manifest["environments"]["docker-nat"]["metadata"]["nat_path"].startswith("iptables DNAT")
    # The clients ran inside the namespace, whose loopback has nothing listening: each one that
    # succeeded reached its server on this host's veth end, where the servers were published;
    # netperf's own first line names the address it connected to.
    raw = tmp_path / run_id / "raw"
    for env in ("host", "docker-nat"):
        assert f"AF_INET to {second_host.host_address} " in (raw / env / "remote-tcp-rr" / "rep-1.txt").read_text()
    assert f"host '{second_host.host_address}'" in (raw / "host" / "remote-tcp-rr" / "rep-1.server.txt").read_text()
    # The run used one connection (the preflight's own, then the master) and closed it.
    assert second_host.sshd_log.read_text().count("Accepted publickey") - logins == 2
    assert f"from {second_host.host_address}" in second_host.sshd_log.read_text()

    # Nothing left: no container or volume with the run's label, no ssh of the run's, no
    # session in the namespace, no scratch folder on the client (same file system here).
    selector = {"label": f"{LABEL_RUN}={run_id}"}
    assert not docker_client.containers.list(all=True, filters=selector)
    assert not docker_client.volumes.list(filters=selector)
    assert masters(run_id) == []
    assert settle(second_host) == {second_host.sshd.pid}
    assert not list(Path("/tmp").glob(f"bench-{run_id}-*"))

    # --resume takes the client from the run's own record: drop docker-nat's samples, mark the
    # run interrupted, and finish it with no client option on the command line.
    samples = tmp_path / run_id / "samples.jsonl"
    kept = [line for line in samples.read_text().splitlines() if '"docker-nat"' not in line]
    samples.write_text("\n".join(kept) + "\n")
    manifest["status"] = "interrupted"
    (tmp_path / run_id / "run.json").write_text(json.dumps(manifest))
    r = bench_cli("run", "--out", str(tmp_path), "--resume", run_id, env={"BENCH_CONFIG_DIR": str(config_copy)})
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"connecting to client host {second_host.destination}" in r.stderr
    df = bench.load(tmp_path / run_id)
    assert len(df[(df.environment == "docker-nat") & (df.metric == "transactions_per_second")]) == 1
    assert json.loads((tmp_path / run_id / "run.json").read_text())["client"]["host"] == second_host.destination
    assert masters(run_id) == [] and settle(second_host) == {second_host.sshd.pid}
    assert not docker_client.containers.list(all=True, filters=selector)


def test_cleanup_removes_a_killed_runs_ssh_control_folder():
    run_id = f"{SESSION}-killed-ssh"
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{run_id}-ssh-"))
    try:
        found = cleanup.find(run_id, Path("/nonexistent"))
        assert [(l.kind, l.name, l.run_id) for l in found] == [("ssh control folder", str(folder), run_id)]
        assert cleanup.find(f"{SESSION}-killed", Path("/nonexistent")) == []  # a run id is not a prefix
        found[0].remove()
        assert not folder.exists()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_resume_refuses_new_client_options(tmp_path):
    r = bench_cli("run", "--out", str(tmp_path), "--resume", "x", "--client-host", "root@192.0.2.1")
    assert r.returncode == 2 and "drop --client-host" in r.stderr


@pytest.mark.integration
def test_a_user_net_guest_forwards_its_ports_from_the_address_facing_the_client(second_host, vm_image,
                                                                                 config_copy, tmp_path):
    """QEMU's user-mode net forwards the guest's ports from publish_address (hostfwd), so the
    client host reaches a server in the guest."""
    (config_copy / "suites" / "remote.yaml").write_text("profile: quick\nrepetitions: 1\nworkloads: [remote-tcp-rr]\n")
    with open(config_copy / "catalogue" / "netperf.yaml", "a") as f:
        f.write(NETPERF)
    run_id = f"{SESSION}-client-vm"
    r = bench_cli("run", "--suite", "remote", "--env", "tcg", "--allow-tcg", *second_host.cli_args(),
                  "--out", str(tmp_path), "--run-id", run_id, env={"BENCH_CONFIG_DIR": str(config_copy)})
    assert r.returncode == 0, r.stderr[-3000:]
    df = bench.load(tmp_path / run_id)
    assert (df[df.metric == "transactions_per_second"].value > 0).all() and len(df[df.metric == "transactions_per_second"]) == 1
    raw = tmp_path / run_id / "raw" / "tcg"
    assert f"AF_INET to {second_host.host_address} " in (raw / "remote-tcp-rr" / "rep-1.txt").read_text()
    xml = (raw / "provision" / "domain.xml").read_text()
    assert f"hostfwd=tcp:{second_host.host_address}:" in xml and "127.0.0.1" not in xml
    metadata = json.loads((tmp_path / run_id / "run.json").read_text())["environments"]["tcg"]["metadata"]
    assert metadata["network_mode"].endswith(f"forwarded to {second_host.host_address}")
    assert masters(run_id) == [] and settle(second_host) == {second_host.sshd.pid}


@pytest.mark.integration
def test_a_missing_client_program_is_named_with_its_own_package(tmp_path):
    """redis-benchmark is in redis-tools, not in redis-server (the server's package)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in Path("/usr/bin").iterdir():
        if program.name != "redis-benchmark":
            (bin_dir / program.name).symlink_to(program)
    r = bench_cli("run", "--suite", "apps", "--env", "docker-nat", "--out", str(tmp_path),
                  "--pass-env", "PATH", env={"PATH": f"{bin_dir}:/usr/sbin:/sbin"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "missing on this host: redis-benchmark; install with `apt-get install redis-tools`" in r.stderr


MARIADB = """
remote-oltp:
  tool: mariadb
  warmups: 0
  params: {tables: 1, table_size: 1000, threads: [2], time: 2, warmup: 0, buffer_pool: 64M}
"""


@pytest.mark.integration
def test_mariadb_admits_the_client_host(second_host, docker_client, config_copy, tmp_path):
    """sbtest@'%' lets sysbench in from the client host's address (host: directly; docker-nat:
    through Docker's DNAT, which keeps the source address)."""
    (config_copy / "suites" / "remote.yaml").write_text("profile: quick\nrepetitions: 1\nworkloads: [remote-oltp]\n")
    with open(config_copy / "catalogue" / "mariadb.yaml", "a") as f:
        f.write(MARIADB)
    run_id = f"{SESSION}-client-oltp"
    r = bench_cli("run", "--suite", "remote", "--env", "host,docker-nat", *second_host.cli_args(),
                  "--out", str(tmp_path), "--run-id", run_id, "--scratch", str(tmp_path / "scratch"),
                  env={"BENCH_CONFIG_DIR": str(config_copy)})
    assert r.returncode == 0, r.stderr[-3000:]
    df = bench.load(tmp_path / run_id)
    for env in ("host", "docker-nat"):
        tps = df[(df.environment == env) & (df.metric == "transactions_per_second")]
        assert list(tps.param_threads) == [2] and (tps.value > 0).all()
    log = (tmp_path / run_id / "raw" / "host" / "remote-oltp" / "rep-1.server.txt").read_text()
    assert f"Server socket created on IP: '{second_host.host_address}'" in log
    assert masters(run_id) == [] and settle(second_host) == {second_host.sshd.pid}
    assert not docker_client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"})
