"""A second host that runs the clients of client/server workloads, reached over SSH.

The study drove its servers from another machine over 10 GbE; `bench run --client-host
[USER@]HOST` does the same: netperf, redis-benchmark and sysbench run there, and the servers in
each environment are published on this host's address facing that machine (publish_address)
instead of loopback. This is the client side only, never an environment a workload is measured
in, so it is not one of the kinds in environments.yaml.

Every command goes through one SSH master connection (ControlMaster, its socket in a private
temporary folder), so an exec costs a channel on an open connection, not a new handshake. The
master is bench's own child: it dies with bench, and teardown closes it. BatchMode: never a
password prompt in the middle of a run. A command runs under the remote `timeout`, so that a
repetition that runs late is killed over there too, not only its local ssh.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import BenchError
from pydantic import BaseModel, ConfigDict

from .base import SERVER_SCRIPT, Availability, Environment, ExecResult, PidFileServer, Server
from .host import _child_setup, _kill_group, run_argv

CONNECT_TIMEOUT = 10       # seconds for SSH to reach the host (ConnectTimeout)
KILL_AFTER = 5             # remote `timeout -k`: seconds between TERM and KILL
LOCAL_GRACE = 15           # the local ssh outlives the remote timeout by this much, then is killed
# Options bench sets itself: a user's value would break multiplexing or allow a prompt.
MANAGED = {"batchmode", "controlmaster", "controlpath", "controlpersist"}
DESTINATION = re.compile(r"^(?:[A-Za-z0-9._][A-Za-z0-9._-]*@)?[A-Za-z0-9._:\[\]-]+$")
OPTION = re.compile(r"^([A-Za-z][A-Za-z0-9]*)=(.+)$", re.DOTALL)


def check_destination(destination: str) -> str:
    """[USER@]HOST as ssh takes it; nothing that ssh could read as an option."""
    if not DESTINATION.fullmatch(destination) or destination.startswith("-"):
        raise BenchError(f"--client-host {destination!r} is not [USER@]HOST")
    return destination


def check_ssh_option(option: str) -> str:
    """KEY=VALUE for `ssh -o`; the options bench manages itself are refused."""
    m = OPTION.match(option)
    if not m or "\n" in option:
        raise BenchError(f"--ssh-option {option!r} is not KEY=VALUE (an ssh_config option, e.g. "
                         f"IdentityFile=/root/.ssh/lab)")
    if m.group(1).lower() in MANAGED:
        raise BenchError(f"--ssh-option {m.group(1)}: bench sets it itself (batch mode, one multiplexed "
                         f"connection); leave it out")
    return option


def ssh_argv(destination: str, options: tuple[str, ...] | list[str], control_path: str = "",
             master: bool = False, stdin: bool = False) -> list[str]:
    """ssh's argv up to and including the destination. ssh keeps the first value it is given
    for an option: bench's managed ones come first, then the user's, then defaults the user's
    may override."""
    argv = ["ssh", "-o", "BatchMode=yes"]
    if control_path:
        argv += ["-o", f"ControlPath={control_path}",
                 "-o", f"ControlMaster={'yes' if master else 'no'}", "-o", "ControlPersist=no"]
    for option in options:
        argv += ["-o", option]
    argv += ["-o", f"ConnectTimeout={CONNECT_TIMEOUT}", "-o", "ServerAliveInterval=15",
             "-o", "ServerAliveCountMax=4", "-o", "LogLevel=ERROR"]
    # -N: the master runs no command; -n: a command reads nothing, unless data is piped to it.
    argv += ["-N", "-T"] if master else ["-T"] if stdin else ["-n", "-T"]
    return [*argv, "--", destination]


def remote_command(argv: list[str], timeout: float | None = None, cwd: str | None = None) -> str:
    """The one string ssh hands to the remote user's shell: every word quoted, so an argument
    is never split or expanded over there; the remote `timeout` bounds it when given."""
    if timeout is not None:
        argv = ["timeout", "-k", str(KILL_AFTER), f"{max(timeout, 1):.0f}", *argv]
    command = shlex.join(argv)
    return f"cd {shlex.quote(cwd)} && {command}" if cwd else command


def _ssh_failure(destination: str, stderr: str) -> str:
    """ssh's own last words, and the fix when it is a common one."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    why = lines[-1] if lines else "ssh exited without saying why"
    hint = ""
    if "Host key verification failed" in why or "No ED25519 host key" in why:
        hint = ("; add its key to known_hosts, or pass --ssh-option UserKnownHostsFile=FILE "
                "(or StrictHostKeyChecking=accept-new)")
    elif "Permission denied" in why:
        hint = "; bench logs in by key only: pass --ssh-option IdentityFile=KEY"
    return f"cannot reach client host {destination} over ssh: {why}{hint}"


@dataclasses.dataclass(frozen=True)
class ClientHost:
    """What preflight learned about the client host: the run's record of its client."""

    destination: str               # [USER@]HOST as given
    ssh_options: tuple[str, ...]   # KEY=VALUE, as given
    address: str                   # the client host's address on the SSH connection
    publish_address: str           # this host's address facing it: where servers are published

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.destination, "ssh_options": list(self.ssh_options),
                "address": self.address, "publish_address": self.publish_address}


def route_source(address: str) -> str:
    """This host's source address towards `address` (`ip route get` -> src): the address a
    server must listen on for that host to reach it."""
    r = subprocess.run(["ip", "-j", "route", "get", address], capture_output=True, text=True, timeout=30)
    try:
        source = json.loads(r.stdout)[0]["prefsrc"] if r.returncode == 0 else ""
    except (ValueError, IndexError, KeyError):
        source = ""
    if not source:
        raise BenchError(f"this host has no route with a source address to the client host {address}: "
                         f"{(r.stderr or r.stdout).strip() or 'ip route get said nothing'}")
    return source


def preflight(destination: str, ssh_options: tuple[str, ...], programs: dict[str, str]) -> ClientHost:
    """Connect once, check the client programs there ({program: Debian package}) and find this
    host's address facing the client. Raises BenchError with one line saying what to fix."""
    check_destination(destination)
    for option in ssh_options:
        check_ssh_option(option)
    if shutil.which("ssh") is None:
        raise BenchError("--client-host needs ssh on this host: apt-get install openssh-client")
    # One round trip: the connection as the remote sshd sees it, then the programs it lacks.
    script = 'echo "$SSH_CONNECTION"; for p in "$@"; do command -v "$p" >/dev/null 2>&1 || echo "missing $p"; done'
    argv = [*ssh_argv(destination, ssh_options), remote_command(["sh", "-c", script, "sh", *programs])]
    r = run_argv(argv, timeout=CONNECT_TIMEOUT + 30)
    if not r.ok:
        raise BenchError(_ssh_failure(destination, r.stderr if not r.timed_out else "timed out"))
    lines = r.stdout.splitlines()
    connection = lines[0].split() if lines else []
    if len(connection) != 4:
        raise BenchError(f"client host {destination}: its shell did not report SSH_CONNECTION "
                         f"(got {lines[:1]}); bench needs a POSIX shell there")
    missing = [line.split(" ", 1)[1] for line in lines[1:] if line.startswith("missing ")]
    if missing:
        packages = " ".join(dict.fromkeys(programs[p] for p in missing))
        raise BenchError(f"missing on client host {destination}: {', '.join(missing)}; install it there with "
                         f"`apt-get install {packages}` (netperf is in Debian's non-free component)")
    address = connection[2]  # the client's own address on this connection (after any ssh_config alias)
    if ipaddress.ip_address(address.split("%")[0]).version != 4:
        raise BenchError(f"client host {destination} is reached over IPv6 ({address}); the servers are "
                         f"published on IPv4 only: give its IPv4 address")
    return ClientHost(destination, tuple(ssh_options), address, route_source(address))


CONTROL_SUFFIX = "-ssh-"  # bench-<run-id>-ssh-<random>: the master's private folder


def control_folders(run_id: str | None) -> list[tuple[Path, str]]:
    """(folder, run id) of SSH control folders left in the temporary folder by killed runs."""
    root = Path(tempfile.gettempdir())
    pattern = f"bench-{run_id}{CONTROL_SUFFIX}*" if run_id else f"bench-*{CONTROL_SUFFIX}*"
    found = []
    for folder in sorted(root.glob(pattern)):
        owner = folder.name[len("bench-"):folder.name.rindex(CONTROL_SUFFIX)]
        if folder.is_dir() and (run_id is None or owner == run_id):
            found.append((folder, owner))
    return found


class RemoteVariant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    host: str   # [USER@]HOST, as --client-host gave it


class RemoteHost(Environment):
    """The client host: argv runs there over the run's SSH master connection."""

    kind = "remote"
    Variant = RemoteVariant
    catalogued = False  # the run's --client-host, not an environment of environments.yaml

    def __init__(self, client: ClientHost, run_id: str, name: str = "client", **given: Any):
        super().__init__(name, {"host": client.destination}, run_id, **given)
        self.client = client
        self._control_dir = ""
        self._master: subprocess.Popen | None = None

    @classmethod
    def availability(cls, variant: BaseModel, allow_tcg: bool = False) -> Availability:
        if shutil.which("ssh") is None:
            return Availability(False, "no ssh on this host: apt-get install openssh-client")
        return Availability(True, "over ssh")

    @classmethod
    def backend_errors(cls) -> tuple[type[BaseException], ...]:
        # ssh that cannot start or reach the client host (a copy's failure is an OSError)
        return (OSError, subprocess.SubprocessError)

    @property
    def control_path(self) -> str:
        return f"{self._control_dir}/master" if self._control_dir else ""

    def ssh(self, master: bool = False, stdin: bool = False) -> list[str]:
        return ssh_argv(self.client.destination, self.client.ssh_options, self.control_path, master, stdin)

    # -- life cycle --------------------------------------------------------------------------

    def _provision(self, scratch_root: str, n_ports: int) -> None:
        # A private folder: whoever can reach the socket can run commands as the remote user.
        self._control_dir = tempfile.mkdtemp(prefix=f"bench-{self.run_id}{CONTROL_SUFFIX}")
        log = Path(self._control_dir) / "master.log"
        with open(log, "wb") as f:
            self._master = subprocess.Popen(self.ssh(master=True), stdin=subprocess.DEVNULL, stdout=f,
                                            stderr=subprocess.STDOUT, preexec_fn=_child_setup())
        deadline = time.monotonic() + CONNECT_TIMEOUT + 20
        check = ["ssh", "-o", f"ControlPath={self.control_path}", "-O", "check", "--", self.client.destination]
        while True:
            if self._master.poll() is not None:
                error = _ssh_failure(self.client.destination, log.read_text(errors="replace"))
                self.teardown()
                raise BenchError(error)
            if run_argv(check, timeout=10).ok:
                break
            if time.monotonic() > deadline:
                self.teardown()
                raise BenchError(_ssh_failure(self.client.destination, "the master connection did not come up"))
            time.sleep(0.1)
        r = self.exec(["mktemp", "-d", f"/tmp/bench-{self.run_id}-client.XXXXXX"], timeout=30)
        if not r.ok:
            error = f"cannot make a scratch folder on client host {self.client.destination}: {r.stderr.strip()}"
            self.teardown()
            raise BenchError(error)
        self.workdir = r.stdout.strip()

    def teardown(self) -> None:
        if self.workdir and self._master is not None and self._master.poll() is None:
            self.exec(["rm", "-rf", self.workdir], timeout=30)
        self.workdir = ""
        if self._master is not None:
            # Ask the master to close its connection; kill it if it does not go.
            run_argv(["ssh", "-o", f"ControlPath={self.control_path}", "-O", "exit", "--",
                      self.client.destination], timeout=10)
            try:
                self._master.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _kill_group(self._master, grace=2.0)
            self._master = None
        if self._control_dir:
            shutil.rmtree(self._control_dir, ignore_errors=True)
            self._control_dir = ""

    @property
    def master_pid(self) -> int | None:
        return self._master.pid if self._master is not None else None

    # -- using it ----------------------------------------------------------------------------

    def _exec(self, argv: list[str], timeout: float, cwd: str | None) -> ExecResult:
        start = time.monotonic()
        r = run_argv([*self.ssh(), remote_command(argv, timeout, cwd)], timeout + LOCAL_GRACE)
        duration = time.monotonic() - start
        # 124: the remote timeout sent TERM; 137: it had to KILL (-k).
        timed_out = r.timed_out or (r.returncode in (124, 137) and duration >= timeout - 1)
        return ExecResult(argv, None if timed_out else r.returncode, r.stdout, r.stderr, duration, timed_out)

    def _put_file(self, path: str, data: bytes) -> None:
        script = 'mkdir -p "$(dirname "$0")" && cat > "$0"'
        proc = subprocess.run([*self.ssh(stdin=True), remote_command(["sh", "-c", script, path])],
                              input=data, capture_output=True, timeout=300, preexec_fn=_child_setup())
        if proc.returncode != 0:
            raise OSError(f"cannot write {path} on {self.client.destination}: "
                          f"{proc.stderr.decode(errors='replace').strip()}")

    def _get_file(self, path: str) -> bytes:
        # Exit 3 tells a missing file from a failed connection (ssh's own 255).
        script = '[ -e "$0" ] || exit 3; cat "$0"'
        proc = subprocess.run([*self.ssh(), remote_command(["sh", "-c", script, path])], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=300, preexec_fn=_child_setup())
        if proc.returncode == 3:
            raise FileNotFoundError(path)
        if proc.returncode != 0:
            raise OSError(f"cannot read {path} on {self.client.destination}: "
                          f"{proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout

    def _start_server(self, argv: list[str], log_name: str) -> Server:
        # Detached from the ssh session, which ends at once: $0 is the files' prefix, $1 the script.
        base = f"{self.workdir}/{log_name}"
        launch = 'script=$1; shift; nohup sh -c "$script" "$0" "$@" >/dev/null 2>&1 &'
        self.exec(["sh", "-c", launch, base, SERVER_SCRIPT, *argv], timeout=30)
        return PidFileServer(self, base)

    def endpoint(self, port: int) -> tuple[str, int]:
        return self.client.address, port

    def metadata(self) -> dict[str, Any]:
        """What the client host is: identity as for this host, and the addresses it has."""
        script = ('echo "hostname=$(hostname)"; echo "kernel=$(uname -r)"; echo "arch=$(uname -m)"; '
                  'echo "cpu_model_name=$(sed -n "s/^model name[[:space:]]*: //p" /proc/cpuinfo | head -n1)"; '
                  'echo "cpu_count=$(nproc)"; echo "os=$(. /etc/os-release 2>/dev/null; echo "$PRETTY_NAME")"; '
                  'echo "addresses=$(ip -4 -o addr show scope global 2>/dev/null | '
                  'while read -r _ dev _ a _; do printf "%s " "$a"; done)"')
        r = self.exec(["sh", "-c", script], timeout=30)
        found = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
        meta: dict[str, Any] = {"env_kind": self.kind, "ssh_destination": self.client.destination,
                                "address": self.client.address}
        for key in ("hostname", "kernel", "arch", "cpu_model_name", "cpu_count", "os"):
            meta[key] = found.get(key, "").strip() or "unavailable"
        if str(meta["cpu_count"]).isdigit():
            meta["cpu_count"] = int(meta["cpu_count"])
        meta["addresses"] = ",".join(found.get("addresses", "").split()) or "unavailable"
        version = run_argv(["ssh", "-V"], timeout=10)
        meta["ssh_version"] = (version.stderr or version.stdout).strip() or "unavailable"
        return meta
