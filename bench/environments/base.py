"""The environment contract: what every place a workload can run in must offer.

An environment is a kind (host, docker, libvirt) plus variant parameters from
workloads/environments.yaml. The runner provisions it once per run, execs tools in it, starts
servers in it for client/server workloads, asks how a client on the host reaches such a
server, records its metadata, and tears it down on success, failure and Ctrl-C.
Commands are argv lists, never shell strings with values pasted in.
"""

from __future__ import annotations

import abc
import contextlib
import copy
import dataclasses
import socket
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict

from ..model import Measurement
from .context import ExecutionContext

if TYPE_CHECKING:
    from ..checks import Check


LOOPBACK = "127.0.0.1"


class BackendError(Exception):
    """The environment's backend failed, not the tool and not bench: the daemon is gone, its API
    or libvirt answered an error, the container or guest died. Each kind says which errors of
    its backend's library mean that (Environment.backend_errors); the contract's methods raise
    them as this one, and the runner records such a step as a failure of cause "backend" and
    provisions the environment anew. Any other exception from a kind, but a BenchError (what the
    user can act on: a refused variant, a folder in the way), is a bug of bench's."""


@contextlib.contextmanager
def backend_faults(env: "Environment | type[Environment]") -> Iterator[None]:
    """Raise the kind's own backend errors (docker's, libvirt's, a socket's) as BackendError,
    with the original as its cause; everything else passes as it is."""
    try:
        yield
    except BackendError:
        raise
    except env.backend_errors() as e:
        raise BackendError(f"{type(e).__name__}: {e}") from e


@dataclasses.dataclass(frozen=True)
class ExecResult:
    argv: list[str]
    returncode: int | None  # None when the command was killed for running past its timeout
    stdout: str
    stderr: str
    duration: float         # wall seconds, as seen by the harness
    timed_out: bool = False
    # About how many of those seconds the tool (or a process under it) was stopped (SIGSTOP, a
    # debugger): seen only where bench holds the process (the host's tools); 0 elsewhere.
    paused: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


@dataclasses.dataclass(frozen=True)
class Leftover:
    """Something a killed run left behind, found by its run id, and how to remove it."""
    kind: str       # container | volume | network | domain | scratch folder | ...
    name: str
    run_id: str
    remove: Callable[[], None] = dataclasses.field(compare=False, repr=False)


class Availability(NamedTuple):
    """Whether a kind's variant can run on this machine, and in words either why not or what it
    runs on (`bench list` shows both)."""
    ok: bool
    reason: str


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why an environment will not do one thing (run a workload, serve a remote client). A
    question of that sort answers None when it will: never a string whose truth says yes."""
    why: str

    def __str__(self) -> str:
        return self.why


class NoVariant(BaseModel):
    """Variant parameters of a kind that has none: any key in its definition is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Server(abc.ABC):
    """A long-running process inside an environment (netserver, redis-server, mariadbd)."""

    @abc.abstractmethod
    def stop(self) -> str:
        """Stop it, and return what it wrote (for the raw folder when something went wrong)."""


# How environments that can only exec (a container, a guest agent) run a server in the
# background: the shell records its pid and becomes the server. argv arrives as positional
# parameters, never pasted into the script; $0 is the path prefix of the .pid and .log files.
SERVER_SCRIPT = 'echo $$ > "$0.pid"; exec "$@" > "$0.log" 2>&1'


class PidFileServer(Server):
    """A server started with SERVER_SCRIPT, stopped by its pid through the environment's exec."""

    def __init__(self, env: "Environment", base: str):
        self.env = env
        self.base = base

    def stop(self) -> str:
        # The pid file appears when the shell starts; allow it a moment if stop() comes quickly.
        script = ('for i in $(seq 50); do [ -s "$0.pid" ] && break; sleep 0.05; done; '
                  'pid=$(cat "$0.pid" 2>/dev/null) || exit 0; kill "$pid" 2>/dev/null; '
                  'for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done; '
                  'kill -9 "$pid" 2>/dev/null; true')
        self.env.exec(["sh", "-c", script, self.base], timeout=30)
        return self.env.exec(["cat", f"{self.base}.log"], timeout=30).stdout


class Instance(abc.ABC):
    """One more instance of an environment, made with the environment's own machinery (the
    same container handle and options, the same domain code, the same image), for the density
    suite: what an instance costs to start, to stop and to keep idle.

    `env` is the instance as an environment (exec, servers, endpoints), usable once started,
    made by the kind with what its environment was given (Environment.passed_on: the declared
    context, the publish address), as every tool of the run runs and is reached.
    start() returns when the instance is ready: a first exec of `true` inside it has returned
    (a container's, a guest agent's, a forked process's), so every kind is ready by one rule."""

    def __init__(self, env: "Environment", parent: "Environment"):
        self.env = env

    def prepare(self) -> None:
        """What must exist before a start and is not part of it (a VM's disks): not timed."""
        with backend_faults(self.env):
            self._prepare()

    def _prepare(self) -> None:
        """The kind's own preparation (nothing by default)."""

    @abc.abstractmethod
    def _start(self) -> None:
        """Make it run (container create+start, domain create): timed with the first exec."""

    def start(self) -> None:
        with backend_faults(self.env):
            self._start()
        r = self.env.exec(["true"], timeout=300, cwd="/")
        if not r.ok:
            raise BackendError(f"{self.env.name}: a first `true` failed: {r.stderr.strip()[-300:] or r.returncode}")

    def stop(self) -> None:
        """Stop and remove it (timed: a stop's latency); safe to call twice."""
        with backend_faults(self.env):
            self._stop()

    @abc.abstractmethod
    def _stop(self) -> None:
        """The kind's own stop and removal."""

    def discard(self) -> None:
        """What stop() leaves that is not part of a stop (a VM's disk folder): not timed."""

    def host_pids(self) -> list[int]:
        """The host processes this instance adds (a container's processes and its shim or
        conmon, QEMU, gVisor's sandbox and gofer), for their proportional set size."""
        with backend_faults(self.env):
            return self._host_pids()

    @abc.abstractmethod
    def _host_pids(self) -> list[int]:
        """The kind's own way to find them."""


class Environment(abc.ABC):
    kind: ClassVar[str]
    # Where a server inside should listen. Ports a server uses are published under the same
    # number (endpoint(port)[1] == port), because netperf tells its server the data port.
    listen_address: ClassVar[str] = "0.0.0.0"
    # The kind's variant parameters (network mode, storage, accel...), checked at config load.
    Variant: ClassVar[type[BaseModel]] = NoVariant
    # A kind of environments.yaml (false: an environment class used by bench itself, such as
    # the --client-host); see environments/__init__.py.
    catalogued: ClassVar[bool] = True
    # Where its leftovers come in `bench cleanup` (lower first): a domain before the network
    # namespace its tap is in, a swarm before the containers, containers before their daemon.
    cleanup_order: ClassVar[int] = 50
    # The study's configuration (workloads/reference/ibm-2014.yaml) an environment of this
    # kind stands for when its own name maps to none: "native", "docker", "kvm"; "" for none.
    # Not inherited by meaning: a kind built on another's code (swarm, podman on Docker's)
    # sets its own.
    study_configuration: ClassVar[str] = ""
    # Whether tools share the host's memory directly (not a guest's): the study's NUMA
    # interleave applies to them (context.memory_policy).
    shares_host_memory: ClassVar[bool] = True
    # The most instances of this kind the density suite starts at once: a larger point of its
    # sweep is left out, and said so (a VM holds its guest's memory and boots for seconds).
    instance_cap: ClassVar[int] = 64

    def __init__(self, name: str, variant: BaseModel | dict[str, Any], run_id: str, allow_tcg: bool = False,
                 context: ExecutionContext = ExecutionContext(), publish_address: str = LOOPBACK):
        self.name = name
        # The kind's variant, as the plan validated it (a mapping is validated here: a test's,
        # or an environment bench makes itself, such as the clients' host).
        self.variant = variant if isinstance(variant, self.Variant) else self.Variant.model_validate(variant)
        self.run_id = run_id
        self.allow_tcg = allow_tcg  # may a VM fall back to emulation when KVM cannot run?
        # The host address servers inside are published on: loopback while clients run on this
        # host; the host's address facing the client when the run's client is another host.
        self.publish_address = publish_address
        self.workdir = ""          # a scratch folder inside the environment, set by provision()
        self.ports: list[int] = [] # ports a server inside may listen on; see endpoint()
        # What provisioning itself measured (a VM's boot-to-ready time): stored as samples.
        self.measurements: list[Measurement] = []
        self._programs: dict[str, bool] = {}
        # What every command here runs under: the run's declared context (its --pass-env).
        self.context = context

    def passed_on(self) -> dict[str, Any]:
        """What this environment was given by its run, for an environment it makes of its own (a
        peer container, a Compose service, a further instance): the same context and publish
        address, so that every tool of the run runs and is reached alike."""
        return {"context": self.context, "publish_address": self.publish_address}

    def for_cell(self, interleave: bool) -> "Environment":
        """This environment as one cell uses it: its commands under the declared context, with
        numactl --interleave=all in front when the cell's workload asks for it (memory_policy).
        A shallow copy: the same container, guest, ports and workdir, dropped after the cell,
        so that the environment's own context never changes during a run."""
        if not interleave:
            return self
        cell = copy.copy(self)
        cell.context = dataclasses.replace(self.context, interleave=True)
        return cell

    # -- before anything is made ------------------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def availability(cls, variant: BaseModel, allow_tcg: bool = False) -> Availability:
        """Can this variant run here, and why not or what it is. Makes nothing, never raises."""

    @classmethod
    def backend_errors(cls) -> tuple[type[BaseException], ...]:
        """The exceptions of this kind's backend that mean it failed (a daemon's client, libvirt,
        a socket, a command that runs the backend): raised by the contract's methods as
        BackendError. None by default: a kind that says nothing has no backend to lose."""
        return ()

    @classmethod
    def leftovers(cls, run_id: str | None) -> list[Leftover]:
        """What killed runs (run_id's, or any run's when None) left of this kind on this
        machine, for `bench cleanup`. Makes nothing; a backend that does not answer has none."""
        return []

    @classmethod
    def doctor_checks(cls) -> list["Check"]:
        """What `bench doctor` says of this kind here: can it run, and what it needs."""
        return []

    @classmethod
    def prepare_image(cls, recipe: Any, force: bool = False) -> str:
        """Make what this kind needs of the workload image's recipe (`bench image build`): a
        Docker image, a VM disk. One line saying what it made; "" when it needs nothing, or
        makes it on first use."""
        return ""

    @classmethod
    def image_status(cls, recipe: Any) -> list[str]:
        """Lines for `bench image show`: what this kind holds of the image, and of older ones."""
        return []

    # -- life cycle --------------------------------------------------------------------------

    def provision(self, scratch_root: str, n_ports: int) -> None:
        """Make the environment ready: a workdir to write in and n_ports ports for servers."""
        with backend_faults(self):
            self._provision(scratch_root, n_ports)

    @abc.abstractmethod
    def _provision(self, scratch_root: str, n_ports: int) -> None:
        """The kind's own way to make it ready."""

    @abc.abstractmethod
    def teardown(self) -> None:
        """Remove everything provision() and the workloads made. Safe to call twice."""

    # -- using it ----------------------------------------------------------------------------

    def exec(self, argv: list[str], timeout: float, cwd: str | None = None) -> ExecResult:
        """Run argv to completion inside the environment, under the declared execution context
        and in the scratch folder unless told otherwise; kill it (and its children) at timeout."""
        with backend_faults(self):
            result = self._exec(self.context.wrap(argv, self.workdir), timeout, cwd or self.workdir or None)
        return dataclasses.replace(result, argv=argv)

    @abc.abstractmethod
    def _exec(self, argv: list[str], timeout: float, cwd: str | None) -> ExecResult:
        """The kind's own way to run argv (already wrapped in the context) to completion."""

    def put_file(self, path: str, data: bytes) -> None:
        """Write a file inside the environment, creating its folder."""
        with backend_faults(self):
            self._put_file(path, data)

    def get_file(self, path: str) -> bytes:
        """Read a file from inside the environment (FileNotFoundError if it is not there)."""
        try:
            with backend_faults(self):
                return self._get_file(path)
        except BackendError as e:
            if isinstance(e.__cause__, FileNotFoundError):  # an answer, not a fault (OSError's kin)
                raise e.__cause__ from None
            raise

    @abc.abstractmethod
    def _put_file(self, path: str, data: bytes) -> None:
        """The kind's own way to write a file (its folder exists or is made)."""

    @abc.abstractmethod
    def _get_file(self, path: str) -> bytes:
        """The kind's own way to read a file (FileNotFoundError if it is not there)."""

    def start_server(self, argv: list[str], log_name: str) -> Server:
        """Start argv in the background inside the environment, under the declared context."""
        with backend_faults(self):
            return self._start_server(self.context.wrap(argv, self.workdir), log_name)

    @abc.abstractmethod
    def _start_server(self, argv: list[str], log_name: str) -> Server:
        """The kind's own way to start argv (already wrapped in the context) in the background."""

    @abc.abstractmethod
    def endpoint(self, port: int) -> tuple[str, int]:
        """The (address, port) at which a client on the host reaches `port` inside."""

    @classmethod
    def remote_client_refusal(cls, variant: BaseModel) -> Refusal | None:
        """Why servers in this variant cannot serve clients on another host (None when they can):
        checked before anything is made when the run's client is another host."""
        return None

    @classmethod
    def intended_difference(cls, key: str, variant: BaseModel, cpu_differs: bool) -> str:
        """Why the parity probe's `key` may differ from native's in this kind and variant (the
        variant or the kind that explains it), or "" when nothing does: then it is a defect of
        the run, not the environment under test (parity.py)."""
        return ""

    def client_environment(self, client: "Environment") -> "Environment":
        """Where clients of servers in here run: the run's client (this host, or another host),
        unless the variant puts them elsewhere (a peer container on the same bridge); such a
        peer belongs to this environment, which provisions and removes it."""
        return client

    def service(self, name: str) -> "Environment":
        """Where the service (tier) `name` of a multi-tier workload runs. One environment runs
        every tier in itself (a host, a container, a VM: the same processes, no network between
        them); a Compose environment gives each service its own container."""
        return self

    def service_address(self, name: str, port: int) -> tuple[str, int]:
        """How one service of this environment reaches `port` of the service `name`: in one
        environment, its own loopback; between Compose's containers, the service's name."""
        return "127.0.0.1", port

    @classmethod
    def refusal(cls, variant: BaseModel, workload: Any) -> Refusal | None:
        """Why this variant cannot run `workload` (None when it can). A Compose environment runs
        only the workloads whose services its compose file defines; the plan leaves the other
        cells out instead of failing them."""
        if getattr(workload, "needs_instances", False) and not cls.makes_instances():
            return Refusal(f"{cls.kind} environments cannot start further instances of themselves")
        return None

    def client_command(self, argv: list[str]) -> list[str]:
        """How the host runs a client of a server inside: argv as it is, unless the server is
        reachable only from a network namespace the environment made (a VM on a bridge)."""
        return argv

    def has_program(self, program: str) -> bool:
        """Whether `program` is on the environment's PATH (asked once per program)."""
        if program not in self._programs:
            self._programs[program] = self.exec(["sh", "-c", 'command -v "$0"', program], timeout=30).ok
        return self._programs[program]

    @abc.abstractmethod
    def metadata(self) -> dict[str, Any]:
        """Flat snake_case keys with scalar values describing this environment."""

    def wait_listening(self, port: int, timeout: float) -> bool:
        """Wait until a TCP server inside listens on `port`. Asked inside the environment: from
        the host, docker-proxy and QEMU's user-mode net accept a connection before anything
        listens behind them, so a connect from outside proves nothing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.exec(["ss", "-ltnH", f"sport = :{port}"], timeout=10)
            if r.ok and r.stdout.strip():
                return True
            time.sleep(0.2)
        return False

    def instance(self, index: int, n_ports: int = 0) -> Instance:
        """Another instance of this environment, not started (the density suite's), with
        n_ports ports for a server of its own. A kind that cannot make one raises
        NotImplementedError; the suite then refuses it before anything is provisioned."""
        raise NotImplementedError(f"{self.kind} environments cannot start further instances")

    def instance_memory_bound_mib(self) -> float:
        """What one instance may take at most, for the density suite's memory floor until one
        has been measured: a container's processes take a few MiB; a VM overrides it."""
        return 64.0

    @classmethod
    def makes_instances(cls) -> bool:
        return cls.instance is not Environment.instance

    def artifacts(self) -> dict[str, str]:
        """Logs worth keeping in the run folder (a VM's console): {file name: text}."""
        return {}

    def variant_as_run(self) -> BaseModel:
        """The variant as it ran, typed (a VM's accel is only known once provisioned): what
        the parity check explains differences by."""
        return self.variant

    def effective_variant(self) -> dict[str, Any]:
        """The variant as it ran (a VM's accel is only known once provisioned); every sample
        carries it: the keys the catalogue gave, as it gave them."""
        return self.variant.model_dump(mode="json", exclude_unset=True)


def wait_for_port(address: str, port: int, timeout: float) -> bool:
    """Poll until a TCP connect to (address, port) succeeds; servers need a moment to listen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False
