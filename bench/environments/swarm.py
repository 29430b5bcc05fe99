"""Docker Swarm: the workload image as a single-node swarm service whose ports are published
through the routing mesh (ingress), beside `docker run -p` (docker-nat).

The swarm is the run's own, made for it and left at its end: a daemon that is already part of
a swarm the run did not make is refused (never tear down someone's swarm). The swarm init
changes the shared daemon (an `ingress` overlay network, a `docker_gwbridge` bridge), so
teardown leaves the swarm and removes docker_gwbridge when the run created it. A marker file
named after the run id records that the run made the swarm, so that `bench cleanup` can leave
it after a killed run, and only then.

The swarm advertises and listens on an address of the run's own: a veth pair made for the run
(this kernel has no dummy interfaces), so that nothing listens on, or is sent to, the host's
real interfaces for swarm control. The service's task is an ordinary container: bench execs in
it through the Engine API as in any Docker environment.

The service names its image by ID (sha256:...): the swarm executor then never asks a registry
(it would try to pull a tag), and no registry is reachable here anyway.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .. import settings
from ..errors import BenchError
from .base import Availability, BackendError, Leftover, Refusal
from .container import LABEL_ENV, LABEL_RUN, STREAM_TIMEOUT, ContainerEnvironment, ContainerHandle, client
from .container_spec import WORKDIR, DockerVariant
from .docker import DockerEnvironment
from .netns import alias_of, ip

GWBRIDGE = "docker_gwbridge"
VETH_PREFIX = "bsw"                    # root-namespace names: at most 15 characters
ADVERTISE_ADDRESS = "10.219.0.1"       # private, on the run's own veth only
ADVERTISE_PREFIX = 30
TASK_TIMEOUT = 120                     # seconds for the service's task to run


class SwarmVariant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # ingress: the routing mesh (DNAT to the ingress sandbox, IPVS to the task, over the
    # ingress overlay network); host: the task's port on the node itself, bypassing the mesh
    # (docker_gwbridge, as `docker run -p` on the default bridge).
    publish: Literal["ingress", "host"] = "ingress"
    # Where the client reaches the published ports: the run's own veth address (iptables DNAT,
    # the path a client on another host takes) or loopback (for host mode: docker-proxy).
    address: Literal["own-interface", "loopback"] = "own-interface"
    storage: Literal["volume", "overlay"] = "volume"


def mesh_support() -> tuple[bool, str]:
    """The routing mesh balances with IPVS inside the ingress sandbox: without it in the kernel
    (built in or as a module), a swarm starts, but nothing answers on a published port."""
    if Path("/proc/net/ip_vs").exists():
        return True, "IPVS in the kernel"
    release = os.uname().release
    modules = Path("/lib/modules") / release
    if modules.is_dir() and any(modules.rglob("ip_vs.ko*")):  # dockerd loads it when it needs it
        return True, "IPVS as a module"
    return False, (f"this kernel ({release}) has no IPVS (CONFIG_IP_VS), which the swarm routing "
                   f"mesh needs to forward a published port to the service")


def markers_folder() -> Path:
    """Where the runs that made this host a swarm manager say so (BENCH_SWARM_MARKERS)."""
    return settings.current().swarm_markers


@dataclasses.dataclass
class Marker:
    """What a run made to have a swarm: read by teardown and by `bench cleanup` after a kill."""

    run_id: str
    veth: str
    node_id: str = ""          # set once the swarm exists; "" if the run died during init
    gwbridge_created: bool = False

    @property
    def path(self) -> Path:
        return markers_folder() / f"{self.run_id}.json"

    def save(self) -> None:
        markers_folder().mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self)))
        tmp.replace(self.path)

    @classmethod
    def load(cls, path: Path) -> "Marker":
        return cls(**json.loads(path.read_text()))


def markers(run_id: str | None = None) -> list[Marker]:
    if not markers_folder().is_dir():
        return []
    paths = [markers_folder() / f"{run_id}.json"] if run_id else sorted(markers_folder().glob("*.json"))
    return [Marker.load(p) for p in paths if p.exists()]


def swarm_state(docker_client) -> tuple[str, str]:
    """(LocalNodeState, NodeID) of the daemon: inactive, pending, active, error or locked."""
    swarm = docker_client.info().get("Swarm") or {}
    return swarm.get("LocalNodeState", "inactive"), swarm.get("NodeID", "")


def gwbridges(docker_client) -> list:
    """docker_gwbridge itself (the API's name filter also matches names that contain it)."""
    return [n for n in docker_client.networks.list(names=[GWBRIDGE]) if n.name == GWBRIDGE]


def _remove_gwbridge(docker_client, run_id: str, timeout: float = 20) -> None:
    """Right after the leave, the ingress sandbox may still hold an endpoint on it."""
    import docker.errors

    deadline = time.monotonic() + timeout
    for network in gwbridges(docker_client):
        while True:
            try:
                network.remove()
                break
            except docker.errors.NotFound:
                break
            except docker.errors.APIError as e:
                if time.monotonic() > deadline:
                    raise BenchError(f"cannot remove {GWBRIDGE} that run {run_id} created: {e}") from None
                time.sleep(0.5)


def made_by(marker: Marker, docker_client) -> bool:
    """Is the daemon's swarm the one this marker's run made? By its node id; or, for a run
    killed before it could write the id down, by the address only the run's veth carries."""
    swarm = docker_client.info().get("Swarm") or {}
    if swarm.get("LocalNodeState", "inactive") == "inactive":
        return False
    if marker.node_id:
        return swarm.get("NodeID") == marker.node_id
    return (swarm.get("NodeAddr") == ADVERTISE_ADDRESS
            and ip("link", "show", marker.veth, check=False).returncode == 0)


def undo(marker: Marker, docker_client) -> None:
    """Remove what a run made for its swarm, in order: its services, the swarm itself (only if
    the daemon's node is still the one the run made), docker_gwbridge if the run created it,
    the veth, then the marker. Safe to call twice."""
    if made_by(marker, docker_client):
        for service in docker_client.services.list(filters={"label": f"{LABEL_RUN}={marker.run_id}"}):
            service.remove()
        _wait_gone(docker_client, marker.run_id)
        docker_client.swarm.leave(force=True)
        _wait_left(docker_client)
        if marker.gwbridge_created:
            _remove_gwbridge(docker_client, marker.run_id)
    if ip("link", "show", marker.veth, check=False).returncode == 0:
        ip("link", "delete", marker.veth)  # its peer goes with it
    marker.path.unlink(missing_ok=True)


def _wait_gone(docker_client, run_id: str, timeout: float = 60) -> None:
    """Service removal stops its task containers asynchronously; the swarm must not be left
    (nor the volume removed) under them."""
    deadline = time.monotonic() + timeout
    selector = {"label": [f"{LABEL_RUN}={run_id}", "com.docker.swarm.task.id"]}
    while docker_client.containers.list(all=True, filters=selector):
        if time.monotonic() > deadline:
            break
        time.sleep(0.3)


def _wait_left(docker_client, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while swarm_state(docker_client)[0] != "inactive" and time.monotonic() < deadline:
        time.sleep(0.2)


class SwarmEnvironment(ContainerEnvironment):
    """The tools run in the one task of a Swarm service of the run's own, on a single-node swarm
    made for the run: the task's container is made by the service, and held by a handle as any
    other container is."""

    kind = "swarm"
    study_configuration = ""  # the study measured no such thing
    Variant = SwarmVariant
    cleanup_order = 20  # before the containers: its service owns its task's and would restart it
    catalogued = True

    @classmethod
    def prepare_image(cls, recipe: Any, force: bool = False) -> str:
        return ""  # Docker's image: the docker kind makes it

    @classmethod
    def image_status(cls, recipe: Any) -> list[str]:
        return []

    @classmethod
    def leftovers(cls, run_id: str | None) -> list[Leftover]:
        """A swarm a killed run made (by its marker): its service, the swarm, docker_gwbridge if
        the run created it, its veth. A swarm that is not the marker's run's own is never left."""
        found = markers(run_id)
        if not found or not DockerEnvironment.availability(DockerVariant()).ok:
            return []
        c = client()
        return [Leftover("swarm", f"{'made by the run' if made_by(m, c) else 'marker only'} ({m.veth})",
                         m.run_id, lambda m=m: undo(m, client()))
                for m in found]

    @classmethod
    def doctor_checks(cls) -> list:
        return []  # Docker's say it; the mesh's support is in `bench list`

    def __init__(self, name: str, variant: BaseModel | dict[str, Any], run_id: str, **given: Any):
        super().__init__(name, variant, run_id, **given)
        self.swarm_service = None  # the Swarm service (Environment.service() names a tier)
        self.marker: Marker | None = None
        self.address = ""  # where the client reaches the published ports
        self.image = None
        self.volume = None

    @classmethod
    def intended_difference(cls, key: str, variant: BaseModel, cpu_differs: bool) -> str:
        # a task is a plain container (no limits, runc) with the variant's storage
        return DockerEnvironment.intended_difference(key, DockerVariant(storage=variant.storage), cpu_differs)

    @classmethod
    def remote_client_refusal(cls, variant: BaseModel) -> Refusal | None:
        return Refusal("its ports are reached at an address of the run's own veth, which no other host "
                       "reaches; run it with clients on this host (no --client-host)")

    @classmethod
    def availability(cls, variant: BaseModel, allow_tcg: bool = False) -> Availability:
        ok, why = DockerEnvironment.availability(DockerVariant(), allow_tcg)
        if not ok:
            return Availability(ok, why)
        mesh = "no routing mesh: ports published on the node"
        if variant.publish == "ingress":
            ok, mesh = mesh_support()
            if not ok:
                return Availability(False, mesh)
        try:
            c = client(timeout=10)
            state, _ = swarm_state(c)
            killed = [m.run_id for m in markers() if made_by(m, c)] if state != "inactive" else []
            c.close()
        except Exception as e:
            return Availability(False, f"cannot ask dockerd about its swarm ({type(e).__name__})")
        if state != "inactive":
            if killed:
                return Availability(False, f"dockerd is in the swarm that killed run {killed[0]} made: "
                                           f"`bench cleanup --run-id {killed[0]}` leaves it")
            return Availability(False, f"dockerd is already part of a swarm ({state}) that bench did not make; "
                                       f"bench never leaves a swarm it did not make")
        return Availability(True, f"{why}; a single-node swarm made for the run, left at its end ({mesh})")

    # -- life cycle --------------------------------------------------------------------------

    def _provision(self, scratch_root: str, n_ports: int) -> None:
        import docker.types

        from .. import image
        from .host import free_loopback_ports

        self._client = client()
        self._stream = client(timeout=STREAM_TIMEOUT)
        self.image = image.docker_image(self._client, image.recipe())
        self._make_swarm()
        labels = {LABEL_RUN: self.run_id, LABEL_ENV: self.name}
        resource = f"bench-{self.run_id}-{self.name}"
        self.ports = free_loopback_ports(n_ports)
        # Published 1:1 like docker-nat (netperf tells its server the data port); UDP too, for
        # netperf UDP_RR. Swarm has no host address to publish on: every interface listens.
        ports = {"Mode": "vip", "Ports": [
            {"Protocol": proto, "TargetPort": p, "PublishedPort": p,
             "PublishMode": self.variant.publish}
            for p in self.ports for proto in ("tcp", "udp")]}
        mounts = []
        if self.variant.storage == "volume":
            self.volume = self._client.volumes.create(name=resource, labels=labels)
            mounts = [docker.types.Mount(WORKDIR, self.volume.name, type="volume")]
        self.swarm_service = self._client.services.create(
            self.image.id, command=["sleep", "infinity"], name=resource, labels=labels,
            container_labels=labels, mounts=mounts, init=True,
            restart_policy=docker.types.RestartPolicy(condition="none"),
            endpoint_spec=ports)
        self.handle = ContainerHandle(self._running_task(), self._client, self._stream)
        self.workdir = WORKDIR
        r = self.exec(["mkdir", "-p", WORKDIR], timeout=30, cwd="/")
        if not r.ok:
            raise BackendError(f"cannot make {WORKDIR} in {resource}: {r.stderr.strip()}")
        self.address = ADVERTISE_ADDRESS if self.variant.address == "own-interface" else "127.0.0.1"

    def _make_swarm(self) -> None:
        state, _ = swarm_state(self._client)
        if state != "inactive":  # checked by availability, but a moment has passed
            raise BenchError("dockerd joined a swarm since the run was planned; bench never leaves a "
                             "swarm it did not make")
        digest = hashlib.sha256(self.run_id.encode()).hexdigest()
        veth = f"{VETH_PREFIX}{digest[:10]}"
        self.marker = Marker(self.run_id, veth,
                             gwbridge_created=not gwbridges(self._client))
        self.marker.save()  # before anything is made: a kill from here on leaves a trace
        # Both ends stay in the root namespace: the pair exists only to carry an address.
        ip("link", "add", veth, "type", "veth", "peer", "name", f"bsp{digest[:10]}")
        ip("link", "set", veth, "alias", alias_of(self.run_id))
        ip("addr", "add", f"{ADVERTISE_ADDRESS}/{ADVERTISE_PREFIX}", "dev", veth)
        ip("link", "set", veth, "up")
        ip("link", "set", f"bsp{digest[:10]}", "up")
        self._client.swarm.init(advertise_addr=ADVERTISE_ADDRESS,
                                listen_addr=f"{ADVERTISE_ADDRESS}:2377",
                                data_path_addr=ADVERTISE_ADDRESS)
        self.marker.node_id = swarm_state(self._client)[1]
        self.marker.save()

    def _running_task(self):
        """The container of the service's one task, once it runs."""
        deadline = time.monotonic() + TASK_TIMEOUT
        while time.monotonic() < deadline:
            for task in self.swarm_service.tasks():
                status = task.get("Status", {})
                if status.get("State") == "running":
                    return self._client.containers.get(status["ContainerStatus"]["ContainerID"])
                if status.get("State") in ("failed", "rejected", "shutdown"):
                    raise BackendError(f"the swarm task {status.get('State')}: {status.get('Err') or status.get('Message')}")
            time.sleep(0.3)
        raise BackendError(f"the swarm service's task did not run within {TASK_TIMEOUT} s")

    def teardown(self) -> None:
        import docker.errors

        if self._client is None:
            return
        if self.swarm_service is not None:
            try:
                self.swarm_service.remove()
            except docker.errors.NotFound:
                pass
            _wait_gone(self._client, self.run_id)
            self.swarm_service = None
            self.handle = None  # the task's container went with the service
        if self.marker is not None:
            undo(self.marker, self._client)
            self.marker = None
        if self.volume is not None:
            try:
                self.volume.remove(force=True)
            except docker.errors.NotFound:
                pass
            self.volume = None
        for c in (self._client, self._stream):
            c.close()
        self._client = self._stream = None

    def endpoint(self, port: int) -> tuple[str, int]:
        return self.address, port

    def metadata(self) -> dict[str, Any]:
        return {
            "env_kind": self.kind,
            **self.engine_metadata(self.image.id),
            "network_mode": f"swarm-{self.variant.publish}",
            "nat_path": {("ingress", "own-interface"): "swarm routing mesh: DNAT, ingress sandbox, IPVS",
                         ("ingress", "loopback"): "swarm routing mesh from loopback: DNAT, ingress sandbox, IPVS",
                         ("host", "own-interface"): "iptables DNAT to the task on docker_gwbridge",
                         ("host", "loopback"): "docker-proxy (loopback client)"}[
                             (self.variant.publish, self.variant.address)],
            "published_on": self.address,
            "server_address": self.address,
            "swarm_node_id": self.marker.node_id if self.marker else "",
            "service_id": self.swarm_service.id[:12] if self.swarm_service else "",
            "storage": self.variant.storage,
            "docker_daemon": "main",
        }
