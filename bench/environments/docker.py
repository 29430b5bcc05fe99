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

import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .. import interrupts
from ..model import Measurement
from .base import Availability, BackendError, Environment, Instance, Leftover, Refusal
from .container import (LABEL_ENV, LABEL_RUN, STREAM_TIMEOUT, ContainerEnvironment, ContainerHandle, OwnedContainer,
                        client, gone_is_fine)
from .container_spec import WORKDIR, DaemonRuntime, DockerVariant, container_options, intended_difference

if TYPE_CHECKING:
    from ..checks import Check

__all__ = ["DaemonRuntime", "DockerEnvironment", "DockerVariant", "LABEL_ENV", "LABEL_RUN", "OwnedContainer",
           "PeerContainer", "WORKDIR", "client"]


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
        return intended_difference(key, cls.container_spec(variant), cpu_differs)

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
        if self.spec.client == "namespace":
            from .netns import ClientNamespace

            self.client_ns = ClientNamespace(self.run_id, self.name)
            self.client_ns.create()
            self.publish_address = self.client_ns.address
        self.ports = free_ports(n_ports, self.publish_address)
        if self.spec.network == "bridge":
            with interrupts.deferred():
                self.network = create_network(self._client, self.run_id, self.name)
        if self.spec.storage == "volume":
            with interrupts.deferred():
                self.volume = self._client.volumes.create(name=resource, labels=labels)
        kwargs = container_options(self.spec, self.publish_address, self.ports,
                                   network=self.network.name if self.network is not None else None,
                                   volume=self.volume.name if self.volume is not None else None,
                                   ulimits=self._engine_limits())
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

    def _engine_limits(self) -> dict[str, int]:
        """Hard limits of the container that the engine, not the variant, calls for."""
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

    def _prepare(self) -> None:
        from .host import free_ports

        parent = self.parent
        # Clients of its own: many instances start at once, and one client's connection pool
        # would queue them. Made before the clock starts (a `docker run` has its client).
        base_url = parent.daemon.base_url if parent.daemon is not None else None
        self.env._client = client(base_url=base_url)
        self.env._stream = client(timeout=STREAM_TIMEOUT, base_url=base_url)
        if self.n_ports:
            self.env.ports = free_ports(self.n_ports, parent.publish_address)
        self.options = container_options(parent.spec, parent.publish_address, self.env.ports,
                                         network=parent.network.name if parent.network is not None else None,
                                         ulimits=parent._engine_limits(), protocols=("tcp",))
        parent.instances.append(self)

    def _start(self) -> None:
        with interrupts.deferred():  # held before a signal that lands meanwhile is raised
            self.env.handle = ContainerHandle.create(
                self.env._client, self.env._stream, self.parent.image.id, f"bench-{self.env.run_id}-{self.env.name}",
                {LABEL_RUN: self.env.run_id, LABEL_ENV: self.parent.name, "bench.role": "instance"},
                **self.options)
        self.env.workdir = "/tmp"

    def _stop(self) -> None:
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

    def _host_pids(self) -> list[int]:
        from .. import hostmem

        self.env.container.reload()
        pid = self.env.container.attrs["State"]["Pid"]
        if not pid:
            return []
        holder = hostmem.ancestor_named(pid, CONTAINER_HOLDERS)
        return hostmem.tree(holder if holder is not None else pid)
