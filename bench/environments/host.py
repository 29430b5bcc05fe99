"""The bare host: the native baseline every other environment is compared with.

It is also where clients of client/server workloads run, so it is a first-class environment
rather than an afterthought: the same contract, with processes started directly.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .. import interrupts, owner
from .base import Availability, BackendError, Environment, ExecResult, Instance, Server
from .context import PATH


_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _child_setup():
    """What a child runs before exec (subprocess's preexec_fn): SIGKILL when bench dies, so that
    a SIGKILLed run leaves no tool or server running, and its own process group (so a timeout
    can kill the whole tree).

    Bench may die after the fork but before the child asked for the signal: the child then
    checks that its parent is still the process that forked it, and kills itself if not.

    A process group, not a session of its own (setsid): with the kernel's autogroup scheduling
    (sched_autogroup_enabled, the default on Debian) every session is a CPU scheduling group of
    its own, so a tool in a new session was scheduled unlike the same command typed in the shell
    that ran bench: under load, netperf TCP_RR's client and server, each in its own group, made
    ~20 % fewer transactions than both run by hand (PERFORMANCE.md, transparency).

    The scheduling is the execution context's, not the caller's: nice 0 and every online CPU,
    as a container's or a guest's processes get from their daemon, even when bench itself was
    started under `nice` or `taskset` (parity.py measures what held)."""
    parent = os.getpid()  # in bench, before the fork
    cpus = online_cpus()

    def setup() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        os.setpgid(0, 0)
        try:
            os.setpriority(os.PRIO_PROCESS, 0, 0)
            os.sched_setaffinity(0, cpus)
        except OSError:  # not permitted (no CAP_SYS_NICE, a cpuset): the probe shows what held
            pass

    return setup


def online_cpus() -> set[int]:
    """The CPUs the kernel has online ("0-3,6"), or those bench may use if that cannot be read."""
    try:
        text = Path("/sys/devices/system/cpu/online").read_text().strip()
        cpus: set[int] = set()
        for part in text.split(","):
            first, _, last = part.partition("-")
            cpus.update(range(int(first), int(last or first) + 1))
        return cpus
    except (OSError, ValueError):
        return set(os.sched_getaffinity(0))


def _kill_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """Stop a process and every child it made (mpirun leaves its ranks behind otherwise)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def free_loopback_ports(n: int) -> list[int]:
    return free_ports(n, "127.0.0.1")


def free_ports(n: int, address: str) -> list[int]:
    """n distinct ports free on `address` now for both TCP and UDP (a server may use either:
    netperf's UDP_RR data connection is UDP); held open together so they differ."""
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        for _ in range(100 * n):
            if len(ports) == n:
                break
            tcp = socket.socket()
            tcp.bind((address, 0))
            socks.append(tcp)
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(udp)
            try:
                udp.bind((address, tcp.getsockname()[1]))
            except OSError:
                continue  # taken for UDP: keep the TCP socket open so it is not offered again
            ports.append(tcp.getsockname()[1])
        if len(ports) < n:
            raise BackendError(f"cannot find {n} ports free on {address} for both TCP and UDP")
        return ports
    finally:
        for s in socks:
            s.close()


def run_argv(argv: list[str], timeout: float, cwd: str | None = None,
             env: dict[str, str] | None = None) -> ExecResult:
    """Run argv on this machine in its own process group so that a timeout kills the whole tree."""
    start = time.monotonic()
    proc = None
    try:
        # A Ctrl-C or SIGTERM that lands while the child is being made (after the fork, before
        # Popen returns) would leave it running unheld: it is raised once `proc` holds it.
        with interrupts.deferred():
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    preexec_fn=_child_setup())
        out, err, paused = _communicate(proc, start + timeout)
        timed_out = False
    except OSError as e:
        if proc is not None:  # not Popen's: the tool ran, and reading its output failed
            _kill_group(proc, grace=2.0)
            raise
        # not installed, not executable, bad cwd
        return ExecResult(argv, 127, "", f"{argv[0]}: {e.strerror}", time.monotonic() - start)
    except subprocess.TimeoutExpired:
        _kill_group(proc, grace=2.0)
        out, err = proc.communicate()
        timed_out = True
    except BaseException:  # Ctrl-C while a tool runs: leave no orphan behind
        if proc is not None:
            _kill_group(proc, grace=2.0)
        raise
    return ExecResult(argv, None if timed_out else proc.returncode,
                      out.decode(errors="replace"), err.decode(errors="replace"),
                      time.monotonic() - start, timed_out, paused if not timed_out else 0.0)


PAUSE_POLL = 0.5  # seconds between looks at whether the tool is stopped: one /proc read or a few


def _communicate(proc: subprocess.Popen, deadline: float) -> tuple[bytes, bytes, float]:
    """proc's output once it ends, and about how long it (or a process under it) was stopped
    meanwhile: a repetition paused by SIGSTOP would otherwise report the pause as the tool's
    time. TimeoutExpired past the deadline, as communicate() raises it (retrying loses nothing)."""
    paused = 0.0
    while True:
        wait = min(PAUSE_POLL, deadline - time.monotonic())
        try:
            out, err = proc.communicate(timeout=max(wait, 0.0))
            return out, err, paused
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                raise
            if _stopped(proc.pid):
                paused += PAUSE_POLL


def _stopped(pid: int, depth: int = 3) -> bool:
    """Whether pid or a process up to `depth` levels under it is stopped (state T or t)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat[stat.rindex(")") + 2] in "Tt":
            return True
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split() if depth else []
    except (OSError, ValueError):
        return False
    return any(_stopped(int(c), depth - 1) for c in children)


class HostServer(Server):
    def __init__(self, proc: subprocess.Popen, log: Path):
        self.proc = proc
        self.log = log

    def stop(self) -> str:
        _kill_group(self.proc)
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class HostEnvironment(Environment):
    kind = "host"
    study_configuration = "native"

    def __init__(self, name: str, variant: BaseModel | dict[str, Any], run_id: str, **given: Any):
        super().__init__(name, variant, run_id, **given)
        self._servers: list[HostServer] = []

    @property
    def listen_address(self) -> str:  # type: ignore[override]
        # Loopback while clients run here: a lab host's servers are exposed only to the
        # run's own client host, on the address facing it, never on every interface.
        return self.publish_address

    @classmethod
    def availability(cls, variant: BaseModel, allow_tcg: bool = False) -> Availability:
        return Availability(True, "this machine")

    @classmethod
    def backend_errors(cls) -> tuple[type[BaseException], ...]:
        # This machine is the backend: a command it cannot start (no memory, no process left),
        # a scratch file it cannot write.
        return (OSError, subprocess.SubprocessError)

    def _provision(self, scratch_root: str, n_ports: int) -> None:
        os.makedirs(scratch_root, exist_ok=True)
        # The run id in the name is how `bench cleanup` recognises a killed run's leftovers.
        self.workdir = tempfile.mkdtemp(prefix=f"bench-{self.run_id}-{self.name}-", dir=scratch_root)
        owner.mark(self.workdir, self.run_id)   # how `bench cleanup` knows it is this run's
        self.ports = free_ports(n_ports, self.publish_address)

    def teardown(self) -> None:
        for server in self._servers:
            server.stop()
        self._servers.clear()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = ""

    def _exec(self, argv: list[str], timeout: float, cwd: str | None) -> ExecResult:
        return run_argv(argv, timeout, cwd)

    def _put_file(self, path: str, data: bytes) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)

    def _get_file(self, path: str) -> bytes:
        return Path(path).read_bytes()

    def _start_server(self, argv: list[str], log_name: str) -> Server:
        log = Path(self.workdir) / f"{log_name}.log"
        # held (for teardown to stop) before a Ctrl-C or SIGTERM that lands meanwhile is raised
        with open(log, "wb") as f, interrupts.deferred():
            proc = subprocess.Popen(argv, cwd=self.workdir or None, stdin=subprocess.DEVNULL, stdout=f,
                                    stderr=subprocess.STDOUT, preexec_fn=_child_setup())
            server = HostServer(proc, log)
            self._servers.append(server)
        return server

    def endpoint(self, port: int) -> tuple[str, int]:
        return self.publish_address, port

    def instance(self, index: int, n_ports: int = 0) -> Instance:
        return HostInstance(self, index, n_ports)

    @staticmethod
    def has_program_here(program: str, path: str = PATH) -> bool:
        """On this machine, without an instance: the runner checks clients before provisioning.
        On the tools' PATH (the declared one unless --pass-env PATH), not bench's own: what runs
        is what is checked."""
        return shutil.which(program, path=path) is not None

    def has_program(self, program: str) -> bool:
        return self.has_program_here(program, self.context.path)

    def metadata(self) -> dict[str, Any]:
        # The host's own description is the run's host metadata; nothing differs here.
        return {"env_kind": self.kind}


class HostInstance(Instance):
    """The host's "instance": a scratch folder and a forked process, nothing that stays. It is
    the floor the other kinds' start-up is read against; it holds no memory while idle, so the
    density suite reports none for it."""

    def __init__(self, parent: HostEnvironment, index: int, n_ports: int):
        super().__init__(HostEnvironment(f"{parent.name}-i{index}", parent.variant, parent.run_id,
                                         **parent.passed_on()), parent)
        self.scratch_root = str(Path(parent.workdir).parent)
        self.n_ports = n_ports

    def _start(self) -> None:
        self.env.provision(self.scratch_root, self.n_ports)

    def _stop(self) -> None:
        self.env.teardown()

    def _host_pids(self) -> list[int]:
        return []
