"""Docker containers through the Engine API (the `docker` Python package, not the CLI).

One long-lived container per environment runs `sleep infinity` from the workload image; tools
are exec'ed in it, so every repetition runs in the same container as a lab run would.
Variants (workloads/environments.yaml):
  network: nat   default bridge, server ports published on the host's publish_address
                 (127.0.0.1, or the address facing a --client-host) under the same number.
                 A client on the same host reaches a loopback-published port through
                 docker-proxy (Docker's userland proxy), not iptables DNAT: recorded as nat_path.
           host  --net=host: no network namespace; servers listen on publish_address only.
           bridge a user-defined bridge network of the run's own (as Compose makes); ports
                 published on publish_address as with nat.
  client: host   clients of client/server workloads run on the host (the run's client).
          container  they run in a peer container on the same bridge network and reach the
                 server at its address there (container-to-container; PeerContainer below).
  storage: volume  the workdir (fio's files) is a Docker volume: the host's file system.
           overlay the workdir is in the container's own union file system (overlay2).
  runtime, cpus, memory: the OCI runtime (e.g. crun) and cgroup limits; none by default.
  seccomp, apparmor: `unconfined` runs without Docker's default seccomp filter / AppArmor profile.
  cap_drop: capabilities taken away (`[ALL]`: a root without privileges).
  daemon_storage_driver, userns_remap, daemon_runtimes: daemon-wide choices; the environment runs
                 its own second dockerd with them for the run (see dockerd.py), not the main daemon.
                 daemon_runtimes registers OCI runtimes (path and arguments) with that daemon,
                 e.g. gVisor's runsc, which `runtime` then names.
Everything made carries the label bench.run_id, which `bench cleanup` uses to find leftovers.
"""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from .. import interrupts
from ..model import Measurement
from .base import (SERVER_SCRIPT, Availability, BackendError, Environment, ExecResult, Instance, Leftover,
                   PidFileServer, Refusal, Server)

if TYPE_CHECKING:
    from ..checks import Check

LABEL_RUN = "bench.run_id"
LABEL_ENV = "bench.environment"
WORKDIR = "/bench/work"
CONTROL_TIMEOUT = 120            # seconds, for API calls that do not wait on a tool
STREAM_TIMEOUT = 7 * 24 * 3600   # the exec socket stays open as long as the tool runs


class DaemonRuntime(BaseModel):
    """An OCI runtime registered with a run's second dockerd (daemon.json `runtimes`)."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str                     # the runtime's binary, e.g. runsc
    args: tuple[str, ...] = ()    # runtimeArgs, given to it for every container


class DockerVariant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    network: Literal["nat", "host", "bridge"] = "nat"
    # where clients run: this host's loopback (docker-proxy carries NAT's port), a peer
    # container, or a network namespace of the run's own (iptables DNAT, as a remote client)
    client: Literal["host", "container", "namespace"] = "host"
    storage: Literal["volume", "overlay"] = "volume"
    runtime: str | None = None    # an OCI runtime registered with dockerd, e.g. crun
    cpus: float | None = None     # --cpus
    memory: str | None = None     # --memory, e.g. "4g"
    seccomp: Literal["default", "unconfined"] = "default"    # --security-opt seccomp=...
    apparmor: Literal["default", "unconfined"] = "default"   # --security-opt apparmor=...
    cap_drop: tuple[str, ...] = ()                           # --cap-drop, e.g. [ALL]
    daemon_storage_driver: Literal["vfs", "btrfs", "zfs", "devicemapper"] | None = None
    userns_remap: bool = False    # dockerd --userns-remap=default
    daemon_runtimes: dict[str, DaemonRuntime] = {}  # OCI runtimes of the run's own dockerd

    @property
    def own_daemon(self) -> bool:
        return bool(self.daemon_storage_driver or self.userns_remap or self.daemon_runtimes)

    @model_validator(mode="after")
    def peer_needs_a_network(self) -> "DockerVariant":
        if self.client == "container" and self.network != "bridge":
            raise ValueError("client: container needs network: bridge (a network the peer can join)")
        if self.client == "namespace" and self.network != "nat":
            raise ValueError("client: namespace reaches a published port: it needs network: nat")
        if self.client == "container" and self.own_daemon:
            raise ValueError("client: container runs its peer on the main dockerd; it cannot be combined "
                             "with a second daemon (daemon_storage_driver, userns_remap, daemon_runtimes)")
        if self.daemon_runtimes and self.runtime not in self.daemon_runtimes:
            raise ValueError(f"runtime must name one of daemon_runtimes ({', '.join(self.daemon_runtimes)}): "
                             f"a runtime registered and never used measures nothing")
        return self


def engine_errors() -> tuple[type[BaseException], ...]:
    """What a client of dockerd (or of Podman's API) raises when the engine fails: its API's
    errors, a connection refused or cut (the daemon gone), a command about it that failed."""
    import subprocess

    try:
        import docker.errors
        import requests.exceptions
    except ImportError:
        return (OSError, subprocess.SubprocessError)
    return (docker.errors.DockerException, requests.exceptions.RequestException, OSError,
            subprocess.SubprocessError)


def client(timeout: float = CONTROL_TIMEOUT, base_url: str | None = None):
    """A client of the main dockerd, or of the daemon at base_url (a run's second dockerd)."""
    import docker

    if base_url:
        return docker.DockerClient(base_url=base_url, timeout=timeout)
    return docker.from_env(timeout=timeout)


class ContainerHandle:
    """One running container of the workload image as bench uses it, through the Engine API
    (dockerd's, or Podman's compatible one): made idle and labelled with its run, a command to
    completion under a timeout, files in and out, a server in the background, and its removal.
    Every environment that runs tools in a container holds one: a Docker or Podman environment,
    a Swarm task (made by its service), a Compose service (made by Compose), docker-c2c's peer."""

    def __init__(self, container, api_client, stream_client):
        self.container = container
        self.api = api_client.api        # control calls
        self.stream = stream_client.api  # an exec's socket stays open as long as the tool runs

    @classmethod
    def create(cls, api_client, stream_client, image_id: str, name: str, labels: dict[str, str],
               **options: Any) -> "ContainerHandle":
        """Make and start a container of the image that idles until it is removed (its init
        reaps mpirun's children), labelled with the run, so that `bench cleanup` finds it if
        the run is killed. Call it where an interrupt is deferred and hold the handle at once.
        A container the engine made but could not start (a runtime that cannot run here) is
        removed before the error is raised: it would hold its volume."""
        try:
            container = api_client.containers.run(image_id, name=name, labels=labels, detach=True, init=True,
                                                  command=["sleep", "infinity"], **options)
        except Exception:
            refused = _created(api_client, name)
            if refused is not None:
                try:
                    refused.remove(force=True, v=True)
                except Exception:  # noqa: BLE001 -- the engine's own error is the one to raise
                    pass           # its label still names the run: `bench cleanup` removes it
            raise
        return cls(container, api_client, stream_client)

    def remove(self) -> None:
        """The container and its anonymous volumes (one already gone is what was wanted)."""
        gone_is_fine(self.container.remove, force=True, v=True)

    def exec(self, argv: list[str], timeout: float, cwd: str | None) -> ExecResult:
        # The Engine API has no exec timeout: coreutils' timeout inside the container signals
        # the command's whole process group (mpirun and its ranks), TERM and then KILL.
        wrapped = ["timeout", "-k", "5", f"{timeout:.0f}", *argv]
        start = time.monotonic()
        exec_id = self.stream.exec_create(self.container.id, wrapped, workdir=cwd)["Id"]
        out, err = self.stream.exec_start(exec_id, demux=True)
        duration = time.monotonic() - start
        code = self.stream.exec_inspect(exec_id)["ExitCode"]
        timed_out = code in (124, 137) and duration >= timeout - 1
        return ExecResult(argv, None if timed_out else code, (out or b"").decode(errors="replace"),
                          (err or b"").decode(errors="replace"), duration, timed_out)

    def put(self, path: str, data: bytes) -> None:
        """Write a file into an existing folder."""
        p = PurePosixPath(path)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(p.name)
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
        self.api.put_archive(self.container.id, str(p.parent), buf.getvalue())

    def get(self, path: str) -> bytes:
        import docker.errors

        try:
            stream, _ = self.api.get_archive(self.container.id, path)
        except docker.errors.NotFound:
            raise FileNotFoundError(path) from None
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.extractfile(tar.getmembers()[0])
            return member.read() if member else b""

    def start_detached(self, argv: list[str]) -> None:
        exec_id = self.api.exec_create(self.container.id, argv)["Id"]
        self.api.exec_start(exec_id, detach=True)


class ContainerEnvironment(Environment):
    """What every environment that runs its tools in one container shares: exec, files and
    servers through the container's handle. Which container, made how, is the kind's own."""

    catalogued = False  # a base, not a kind of environments.yaml

    def __init__(self, name: str, variant: BaseModel | dict[str, Any], run_id: str, **given: Any):
        super().__init__(name, variant, run_id, **given)
        self.handle: ContainerHandle | None = None
        self._client = None   # the engine's clients: control calls, and the long-lived execs
        self._stream = None

    @classmethod
    def backend_errors(cls) -> tuple[type[BaseException], ...]:
        return engine_errors()

    @property
    def container(self):
        """The container the handle holds (the Docker SDK's object), None before it is made."""
        return self.handle.container if self.handle is not None else None

    def _exec(self, argv: list[str], timeout: float, cwd: str | None) -> ExecResult:
        return self.handle.exec(argv, timeout, cwd)

    def _put_file(self, path: str, data: bytes) -> None:
        self.exec(["mkdir", "-p", str(PurePosixPath(path).parent)], timeout=30)
        self.handle.put(path, data)

    def _get_file(self, path: str) -> bytes:
        return self.handle.get(path)

    def _start_server(self, argv: list[str], log_name: str) -> Server:
        base = f"{self.workdir}/{log_name}"
        self.handle.start_detached(["sh", "-c", SERVER_SCRIPT, base, *argv])
        return PidFileServer(self, base)

    def engine_metadata(self, image_id: str) -> dict[str, Any]:
        """What the engine says of itself and of this container: what the container got, as
        the daemon reports it, not only what was asked for."""
        from .. import image

        info = self._client.info()
        version = self._client.version()
        self.container.reload()
        host_config = self.container.attrs["HostConfig"]
        return {
            "docker_version": version.get("Version", ""),
            "docker_api_version": version.get("ApiVersion", ""),
            "storage_driver": info.get("Driver", ""),
            "cgroup_driver": info.get("CgroupDriver", ""),
            "cgroup_version": info.get("CgroupVersion", ""),
            "security_options": ",".join(info.get("SecurityOptions", []) or []) or "none",
            "runtime": host_config.get("Runtime", ""),
            "image_tag": image.recipe().tag,
            "image_id": image_id,
            "container_id": self.container.id[:12],
            "security_opt": ",".join(host_config.get("SecurityOpt") or []) or "default",
            "cap_drop": ",".join(host_config.get("CapDrop") or []) or "none",
            "nano_cpus": host_config.get("NanoCpus") or 0,
            "memory_limit_bytes": host_config.get("Memory") or 0,
            "userns_remap": "yes" if any("userns" in o for o in info.get("SecurityOptions", []) or []) else "no",
        }


class OwnedContainer(ContainerEnvironment):
    """A container that belongs to another environment, which makes it and removes it (a
    Compose service, docker-c2c's client peer): used as any environment is, by the runner or a
    workload's tier, but with no variant and no life of its own."""

    kind = "docker"

    def __init__(self, name: str, run_id: str, **given: Any):
        super().__init__(name, {}, run_id, **given)

    @classmethod
    def availability(cls, variant: BaseModel, allow_tcg: bool = False) -> Availability:
        return Availability(True, "made by the environment it belongs to")

    @classmethod
    def intended_difference(cls, key: str, variant: BaseModel, cpu_differs: bool) -> str:
        return DockerEnvironment.intended_difference(key, DockerVariant(), cpu_differs)  # a plain container

    def _provision(self, scratch_root: str, n_ports: int) -> None:
        """Nothing: its owner made it (a peer's owner calls make())."""

    def teardown(self) -> None:
        """Nothing: its owner removes it."""

    def endpoint(self, port: int) -> tuple[str, int]:
        return self.publish_address, port

    def metadata(self) -> dict[str, Any]:
        return {"container_id": self.container.id[:12] if self.container is not None else ""}


class DockerEnvironment(ContainerEnvironment):
    kind = "docker"
    study_configuration = "docker"
    Variant = DockerVariant
    cleanup_order = 30  # after a swarm (its service would restart a task's container)
    catalogued = True

    def __init__(self, name: str, variant: BaseModel | dict[str, Any], run_id: str, **given: Any):
        super().__init__(name, variant, run_id, **given)
        self.spec = self.container_spec(self.variant)
        self.volume = None
        self.image = None
        self.network = None   # network: bridge, the run's own
        self.peer = None      # client: container, where clients run
        self.bridge_address = ""  # the server's address on the run's network, for the peer
        self.daemon = None  # a second dockerd, for daemon-wide variants
        self.client_ns = None  # client: namespace, the run's own
        self.instances: list[DockerInstance] = []  # the density suite's, while they live

    @classmethod
    def container_spec(cls, variant: BaseModel) -> DockerVariant:
        """The container (and daemon) to make, in Docker's terms: Docker's variant is one. A
        kind that runs its tools in a container made by this code (Podman's) says what its own
        variant asks of the container; its variant stays its own."""
        return variant

    @classmethod
    def refusal(cls, variant: BaseModel, workload: Any) -> Refusal | None:
        """A tool that cannot run under the variant's OCI runtime (a fact of the tool's module)."""
        runtime = cls.container_spec(variant).runtime
        why = getattr(workload, "runtime_refusals", {}).get(runtime) if runtime else None
        return Refusal(f"under {runtime}, {why}") if why else super().refusal(variant, workload)

    @property
    def listen_address(self) -> str:  # type: ignore[override]
        # With --net=host a server listening on 0.0.0.0 would be open on every host interface.
        return self.publish_address if self.spec.network == "host" else "0.0.0.0"

    @classmethod
    def availability(cls, variant: BaseModel, allow_tcg: bool = False) -> Availability:
        try:
            import docker  # noqa: F401
        except ImportError:
            return Availability(False, "the docker Python package is missing: pip install 'bench[docker]'")
        try:
            c = client(timeout=10)
            c.ping()
            info = c.info()
        except Exception as e:
            return Availability(False, f"dockerd is not reachable ({type(e).__name__}): install docker.io and "
                                       f"start it (`dockerd &`), or run scripts/setup.sh")
        runtime = variant.runtime
        if runtime and runtime not in variant.daemon_runtimes and runtime not in info.get("Runtimes", {}):
            return Availability(False, f"dockerd has no runtime '{runtime}' "
                                       f"(it has {', '.join(info.get('Runtimes', {}))})")
        if variant.apparmor == "unconfined" and not apparmor_enabled():
            return Availability(False, "AppArmor is not enabled in this kernel (/sys/module/apparmor/parameters/"
                                       "enabled is not Y): containers have no AppArmor profile to remove")
        own = ""
        if variant.own_daemon:
            from . import dockerd

            ok, why = dockerd.availability(variant.daemon_storage_driver, variant.userns_remap,
                                           {n: r.path for n, r in variant.daemon_runtimes.items()})
            if not ok:
                return Availability(False, why)
            own = f"; {why}"
        from .. import image

        recipe = image.recipe()
        try:
            c.images.get(recipe.tag)
            built = f"image {recipe.tag} built"
        except Exception:
            built = f"image {recipe.tag} is built on first use (a few minutes)"
        return Availability(True, f"dockerd {info.get('ServerVersion')}, {info.get('Driver')}; {built}{own}")

    @classmethod
    def leftovers(cls, run_id: str | None) -> list[Leftover]:
        """Containers, networks and volumes on the main dockerd carrying the run's label (a
        Compose project's too), then second dockerds (stopped by their pid, their folder
        removed) and their bridges: containers before their volumes and networks, a daemon
        before its bridge."""
        return _main_daemon_leftovers(run_id) + _second_daemon_leftovers(run_id)

    @classmethod
    def doctor_checks(cls) -> list["Check"]:
        from .. import image
        from ..checks import OK, WARN, Check

        ok, why = cls.availability(DockerVariant())
        if not ok:
            return [Check("environments", "docker", WARN, f"docker environments unavailable: {why}",
                          "apt-get install docker.io; start dockerd")]
        checks = [Check("environments", "docker", OK, why)]
        recipe = image.recipe()
        try:
            client().images.get(recipe.tag)
            checks.append(Check("image", "image docker", OK, f"{recipe.tag} present"))
        except Exception:  # noqa: BLE001 -- not there, or the daemon stopped answering
            checks.append(Check("image", "image docker", WARN,
                                f"{recipe.tag} missing (built on first Docker run, minutes)", "bench image build"))
        return checks

    @classmethod
    def prepare_image(cls, recipe: Any, force: bool = False) -> str:
        from .. import image
        from ..errors import BenchError

        ok, why = DockerEnvironment.availability(DockerVariant())
        if not ok:
            raise BenchError(f"cannot build the Docker image: {why}")
        return f"{recipe.tag} {image.docker_image(client(), recipe, force=force).id}"

    @classmethod
    def image_status(cls, recipe: Any) -> list[str]:
        from .. import image

        ok, why = DockerEnvironment.availability(DockerVariant())
        if not ok:
            return [f"docker: {why}"]
        lines = []
        for img in client().images.list(name=image.IMAGE_REPOSITORY):
            current = "current" if recipe.tag in img.tags else "older recipe"
            lines.append(f"docker image {', '.join(img.tags)} {img.short_id} {img.attrs['Size'] / 2**20:.0f} MiB "
                         f"({current})")
        return lines

    @classmethod
    def intended_difference(cls, key: str, variant: BaseModel, cpu_differs: bool) -> str:
        # Swarm tasks, Podman's and Compose's containers are containers too, with the same keys.
        spec = cls.container_spec(variant)
        if key == "cgroup_cpu_quota" and spec.cpus:
            return f"--cpus {spec.cpus:g}"
        if key == "cgroup_memory_limit" and spec.memory:
            return f"--memory {spec.memory}"
        runtime = spec.runtime
        if runtime and runtime in spec.daemon_runtimes:
            # A sandboxing runtime (gVisor) is a kernel of its own between the tool and the
            # host's: what it shows of the CPU, /proc and file systems is its, by design.
            sandbox = f"the OCI runtime {runtime}'s own kernel (its CPUID, /proc and file systems)"
            if key in ("cpu_model", "cpu_flags", "kernel_release", "kernel_cmdline", "clocksource", "thp",
                       "cgroup_cpu_quota", "cgroup_memory_limit", "cwd_fs", "online_cpus"):
                return sandbox
            if key == "blas_core" and cpu_differs:
                return f"OpenBLAS picks by the CPU flags {sandbox} shows"
            if key.startswith("limit."):
                return sandbox
        if key in ("cgroup_cpu_quota", "cgroup_memory_limit"):
            return "the container's own cgroup (no limit set by the variant)"
        if key == "cwd_fs":
            return f"storage: {spec.storage} (the scratch folder's file system)"
        return ""

    # -- life cycle --------------------------------------------------------------------------

    def _provision(self, scratch_root: str, n_ports: int) -> None:
        from .. import image
        from .host import free_ports

        start = time.monotonic()
        self.daemon = self._own_daemon()
        if self.daemon is not None:
            self.daemon.start()
        base_url = self.daemon.base_url if self.daemon is not None else None
        self._client = client(base_url=base_url)
        self._stream = client(timeout=STREAM_TIMEOUT, base_url=base_url)
        self.image = image.docker_image(self._client, image.recipe(), base_url=base_url)
        if self.daemon is not None:
            self.measurements.append(Measurement("daemon_start_and_image_import", time.monotonic() - start,
                                                 "s", "lower"))
        labels = {LABEL_RUN: self.run_id, LABEL_ENV: self.name}
        resource = f"bench-{self.run_id}-{self.name}"
        kwargs: dict[str, Any] = {}
        if self.spec.client == "namespace":
            from .netns import ClientNamespace

            self.client_ns = ClientNamespace(self.run_id, self.name)
            self.client_ns.create()
            self.publish_address = self.client_ns.address
        self.ports = free_ports(n_ports, self.publish_address)
        if self.spec.network == "host":
            kwargs["network_mode"] = "host"
        else:
            if self.spec.network == "bridge":
                with interrupts.deferred():
                    self.network = create_network(self._client, self.run_id, self.name)
                kwargs["network"] = self.network.name
            # Both protocols: a server's data connection may be UDP (netperf UDP_RR).
            kwargs["ports"] = {f"{p}/{proto}": (self.publish_address, p)
                               for p in self.ports for proto in ("tcp", "udp")}
        if self.spec.storage == "volume":
            with interrupts.deferred():
                self.volume = self._client.volumes.create(name=resource, labels=labels)
            kwargs["volumes"] = {self.volume.name: {"bind": WORKDIR, "mode": "rw"}}
        kwargs.update(self._container_options())
        # Creating and starting the container is where a storage driver's cost is plainest
        # (vfs copies the whole image): measured as provisioning, like a VM's boot.
        start = time.monotonic()
        with interrupts.deferred():  # dockerd makes it even if we stop listening: hold its handle first
            self.handle = ContainerHandle.create(self._client, self._stream, self.image.id, resource, labels,
                                                 **kwargs)
        self.measurements.append(Measurement("container_start", time.monotonic() - start, "s", "lower"))
        self.workdir = WORKDIR
        r = self.exec(["mkdir", "-p", WORKDIR], timeout=30, cwd="/")
        if not r.ok:
            raise BackendError(f"cannot make {WORKDIR} in {resource}: {r.stderr.strip()}")
        if self.spec.client == "container":
            self.peer = PeerContainer(self, self.network)
            self.peer.make()
            self.bridge_address = address_on(self.container, self.network)

    def _container_options(self) -> dict[str, Any]:
        """What the variant asks of a container besides its network and storage: its runtime,
        limits and security profile, and what the engine calls for. Every container of the
        environment gets them: its own, and the density suite's further instances."""
        kwargs: dict[str, Any] = {}
        if self.spec.runtime:
            kwargs["runtime"] = self.spec.runtime
        if self.spec.cpus:
            kwargs["nano_cpus"] = int(self.spec.cpus * 1e9)
        if self.spec.memory:
            kwargs["mem_limit"] = self.spec.memory
        security = [f"{layer}=unconfined" for layer in ("seccomp", "apparmor")
                    if getattr(self.spec, layer) == "unconfined"]
        if security:
            kwargs["security_opt"] = security
        if self.spec.cap_drop:
            kwargs["cap_drop"] = list(self.spec.cap_drop)
        kwargs.update(self._engine_options())
        return kwargs

    def instance(self, index: int, n_ports: int = 0) -> "DockerInstance":
        return DockerInstance(self, index, n_ports)

    def _own_daemon(self):
        """The daemon of the run's own this environment talks to (not started yet), or None for
        the main dockerd: a second dockerd for daemon-wide variants. Its start() and stop() are
        called by provision and teardown; base_url names its API socket."""
        if not self.spec.own_daemon:
            return None
        from .dockerd import Dockerd

        return Dockerd(self.run_id, self.name, self.spec.daemon_storage_driver, self.spec.userns_remap,
                       {n: {"path": r.path, "runtimeArgs": list(r.args)}
                        for n, r in self.spec.daemon_runtimes.items()})

    def _engine_options(self) -> dict[str, Any]:
        """Options of the container that the engine, not the variant, calls for."""
        return {}

    def teardown(self) -> None:
        """Remove what provisioning made, each part tried even when another fails (a dead
        daemon refuses the container's removal; its own folder and bridge must still go); the
        failures are raised together at the end, naming what was left."""
        import docker.errors

        left: list[str] = []

        def attempt(what: str, remove) -> None:
            try:
                remove()
            except docker.errors.NotFound:
                pass
            except Exception as e:  # noqa: BLE001 -- collected, raised below
                left.append(f"{what} ({str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__})")

        for extra in self.instances:  # the density suite's, if a stop was cut short
            attempt(f"instance container {extra.env.name}", extra.stop)
            extra.discard()
        self.instances.clear()
        if self.peer is not None:
            attempt(f"peer container of {self.name}", self.peer.remove)
            self.peer = None
        if self.handle is not None:  # the server's container goes even if its peer's removal failed
            attempt(f"container {self.container.name}", self.handle.remove)
            self.handle = None
        if self.volume is not None:
            attempt(f"volume {self.volume.name}", lambda: self.volume.remove(force=True))
            self.volume = None
        if self.network is not None:  # once no container is on it
            attempt(f"network {self.network.name}", lambda: remove_network(self.network))
            self.network = None
        for c in (self._client, self._stream):
            if c is not None:
                attempt("a client connection", c.close)
        self._client = self._stream = None
        if self.daemon is not None:
            # after its containers and volumes; a daemon that died is stopped all the same (its
            # containerd and shims found by their folder), and its folder removed
            attempt(f"the daemon {self.daemon.folder}", self.daemon.stop)
            self.daemon = None
        if self.client_ns is not None:
            attempt("the client namespace", self.client_ns.delete)
            self.client_ns = None
        if left:
            raise RuntimeError(f"left {'; '.join(left)}")

    # -- using it ----------------------------------------------------------------------------

    def endpoint(self, port: int) -> tuple[str, int]:
        # A peer container reaches the server at its address on their bridge; else nat and
        # bridge are published 1:1 on publish_address, and host shares the host's stack.
        if self.peer is not None:
            return self.bridge_address, port
        return self.publish_address, port

    def client_command(self, argv: list[str]) -> list[str]:
        return self.client_ns.client_command(argv) if self.client_ns else argv

    @classmethod
    def remote_client_refusal(cls, variant: BaseModel) -> Refusal | None:
        if cls.container_spec(variant).client == "namespace":
            return Refusal("its clients run in a network namespace of the run's own on this host; with "
                           "--client-host every Docker NAT variant is reached through iptables DNAT already "
                           "(docker-nat)")
        return None

    def _nat_path(self) -> str:
        if self.spec.network == "host" or self.peer is not None:
            return "none"
        if self.client_ns is not None:
            return (f"iptables DNAT on {self.publish_address} (PREROUTING; client in network namespace "
                    f"{self.client_ns.namespace}, as from another host)")
        if self.publish_address.startswith("127."):
            return "docker-proxy (loopback client)"
        # A packet from another host meets Docker's DNAT rule in PREROUTING (docker-proxy
        # carries it only where dockerd runs without iptables).
        return f"iptables DNAT on {self.publish_address} (remote client)"

    def client_environment(self, client: Environment) -> Environment:
        return self.peer if self.peer is not None else client

    def metadata(self) -> dict[str, Any]:
        return {
            "env_kind": self.kind,
            **self.engine_metadata(self.image.id),
            "network_mode": self.spec.network,
            "nat_path": self._nat_path(),
            "client_placement": self.spec.client,
            "user_network": self.network.name if self.network is not None else "none",
            "server_address": self.bridge_address or self.publish_address,
            **(self.peer.metadata() if self.peer is not None else {}),
            "storage": self.spec.storage,
            "cpus_limit": self.spec.cpus or "none",
            "memory_limit": self.spec.memory or "none",
            "docker_daemon": f"second dockerd {self.daemon.folder}" if self.daemon else "main",
        }


def _main_daemon_leftovers(run_id: str | None) -> list[Leftover]:
    ok, _ = DockerEnvironment.availability(DockerVariant())
    if not ok:
        return []
    c = client()
    selector = {"label": f"{LABEL_RUN}={run_id}" if run_id else LABEL_RUN}
    found = []
    for container in c.containers.list(all=True, filters=selector):
        found.append(Leftover("container", container.name, container.labels.get(LABEL_RUN, "?"),
                              lambda x=container: gone_is_fine(x.remove, force=True, v=True)))
    for volume in c.volumes.list(filters=selector):
        labels = volume.attrs.get("Labels") or {}
        found.append(Leftover("volume", volume.name, labels.get(LABEL_RUN, "?"),
                              lambda x=volume: gone_is_fine(x.remove, force=True)))
    for network in c.networks.list(filters=selector):
        found.append(Leftover("network", network.name, (network.attrs.get("Labels") or {}).get(LABEL_RUN, "?"),
                              lambda x=network: gone_is_fine(x.remove)))
    # Containers first: a volume or network in use cannot be removed.
    order = {"container": 0, "network": 1, "volume": 2}
    return sorted(found, key=lambda leftover: order[leftover.kind])


def _second_daemon_leftovers(run_id: str | None) -> list[Leftover]:
    from . import dockerd

    found = [Leftover(kind, name, who, remove) for kind, name, who, remove in dockerd.leftovers(run_id)]
    # The daemon before its bridge: dockerd holds the bridge while it runs.
    return sorted(found, key=lambda leftover: leftover.kind == "bridge")


def gone_is_fine(remove, **kwargs) -> None:
    """A swarm task's container goes with its service, before its own leftover comes up."""
    import docker.errors

    try:
        remove(**kwargs)
    except docker.errors.NotFound:
        pass


def _created(docker_client, name: str):
    """The container of that name if the daemon made it, else None."""
    try:
        return docker_client.containers.get(name)
    except Exception:  # noqa: BLE001 -- not made, or the daemon is gone: nothing to hold
        return None


def apparmor_enabled() -> bool:
    """Whether the kernel enforces AppArmor, so that Docker applies its docker-default profile."""
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


# -- container to container ----------------------------------------------------------------
#
# Container-to-container networking: a user-defined bridge network of the run's own, and a
# peer container on it where the clients of client/server workloads run.
#
# This is what Compose sets up for a two-tier application: each service in its own container on
# one user-defined bridge, reaching the other by its address there, with no port publishing,
# docker-proxy or NAT on the path. The peer runs the same workload image as the server, so the
# client binaries are the very ones the host-to-container variants use on the host.
#
# Both carry the label bench.run_id (and bench.environment): teardown removes them, and
# `bench cleanup` finds what a killed run left.

def create_network(docker_client, run_id: str, environment: str):
    """A bridge network for the server and its peer. Docker gives it a free private subnet and
    an embedded DNS that resolves container names, as in a Compose project."""
    return docker_client.networks.create(
        f"bench-{run_id}-{environment}", driver="bridge", check_duplicate=True,
        labels={LABEL_RUN: run_id, LABEL_ENV: environment})


def remove_network(network) -> None:
    import docker.errors

    try:
        network.remove()
    except docker.errors.NotFound:
        pass


def address_on(container, network) -> str:
    """A container's IPv4 address on one network."""
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]


class PeerContainer(OwnedContainer):
    """The client side of a container-to-container pair: execs in a second container of the
    workload image on the server's network. It belongs to the server's environment, which
    makes and removes it; the runner sees it only as `ctx.client`."""

    def __init__(self, server: DockerEnvironment, network):
        super().__init__(f"{server.name}-client", server.run_id, **server.passed_on())
        self.server_name = server.name
        self.bridge = network  # the server's: it removes the network, once both containers are gone

    def make(self) -> None:
        from .. import image

        self._client = client()
        self._stream = client(timeout=STREAM_TIMEOUT)
        img = image.docker_image(self._client, image.recipe())
        # Labelled with the server's environment name: cleanup and tests find the pair together.
        with interrupts.deferred():
            self.handle = ContainerHandle.create(
                self._client, self._stream, img.id, f"bench-{self.run_id}-{self.server_name}-client",
                {LABEL_RUN: self.run_id, LABEL_ENV: self.server_name, "bench.role": "client"},
                network=self.bridge.name)
        self.workdir = "/tmp"

    def remove(self) -> None:
        """The container and the peer's connections to the daemon."""
        try:
            if self.handle is not None:
                self.handle.remove()
                self.handle = None
        finally:
            for c in (self._client, self._stream):
                if c is not None:
                    c.close()
            self._client = self._stream = None

    def address(self) -> str:
        return address_on(self.container, self.bridge)

    def metadata(self) -> dict[str, Any]:
        return {"client_container_id": self.container.id[:12], "client_address": self.address()}


# -- further instances (the density suite) -------------------------------------------------

# The process that holds a container for its engine: containerd's shim (runc, and gVisor's
# runsc with its sandbox and gofer below it), or Podman's conmon.
CONTAINER_HOLDERS = ("containerd-shim", "conmon")


class DockerInstance(Instance):
    """One more container of the environment's variant on the same engine: the same image,
    runtime, limits, security profile and network mode through the same container handle, its
    ports (if it serves) published as the environment's. Its workdir is in its own file system:
    a volume per instance would time the volume's creation too, which `docker run` does not."""

    def __init__(self, parent: DockerEnvironment, index: int, n_ports: int):
        env = OwnedContainer(f"{parent.name}-i{index}", parent.run_id, **parent.passed_on())
        env.listen_address = parent.listen_address  # type: ignore[misc]
        super().__init__(env, parent)
        self.parent = parent
        self.n_ports = n_ports
        self.options: dict[str, Any] = {}

    def prepare(self) -> None:
        from .host import free_ports

        parent = self.parent
        # Clients of its own: many instances start at once, and one client's connection pool
        # would queue them. Made before the clock starts (a `docker run` has its client).
        base_url = parent.daemon.base_url if parent.daemon is not None else None
        self.env._client = client(base_url=base_url)
        self.env._stream = client(timeout=STREAM_TIMEOUT, base_url=base_url)
        self.options = parent._container_options()
        if parent.spec.network == "host":
            self.options["network_mode"] = "host"
        elif parent.network is not None:
            self.options["network"] = parent.network.name
        if self.n_ports:
            self.env.ports = free_ports(self.n_ports, parent.publish_address)
            if parent.spec.network != "host":
                self.options["ports"] = {f"{p}/tcp": (parent.publish_address, p) for p in self.env.ports}
        parent.instances.append(self)

    def _start(self) -> None:
        with interrupts.deferred():  # held before a signal that lands meanwhile is raised
            self.env.handle = ContainerHandle.create(
                self.env._client, self.env._stream, self.parent.image.id, f"bench-{self.env.run_id}-{self.env.name}",
                {LABEL_RUN: self.env.run_id, LABEL_ENV: self.parent.name, "bench.role": "instance"},
                **self.options)
        self.env.workdir = "/tmp"

    def stop(self) -> None:
        if self.env.handle is not None:
            self.env.handle.remove()
            self.env.handle = None

    def discard(self) -> None:
        for c in (self.env._client, self.env._stream):
            if c is not None:
                c.close()
        self.env._client = self.env._stream = None
        if self in self.parent.instances:
            self.parent.instances.remove(self)

    def host_pids(self) -> list[int]:
        from .. import hostmem

        self.env.container.reload()
        pid = self.env.container.attrs["State"]["Pid"]
        if not pid:
            return []
        holder = hostmem.ancestor_named(pid, CONTAINER_HOLDERS)
        return hostmem.tree(holder if holder is not None else pid)
