"""Podman (rootful) as an environment kind: the same workload image, run by Podman's engine
(conmon and the OCI runtime Podman is configured with) instead of dockerd's.

Bench talks to Podman through its Docker-compatible API, served for the run by a
`podman system service` of the run's own on a socket in a folder of its own
(/var/lib/bench-podman/<12 hex digits of run id and environment>/, with owner.json naming the
run, the service's pid, socket and log). So the container handle is Docker's (docker.py): the
same create, exec, file copy, server and removal code runs against either engine, and only the
engine differs. Podman keeps its images and containers in its own store
(/var/lib/containers/storage); every container and volume of a run carries the label
bench.run_id, which teardown and `bench cleanup` go by (the store is shared with the user's own
Podman containers, which are never touched).

Limits: Podman asks the runtime for a hard RLIMIT_NOFILE (and NPROC) of 1048576 unless told
otherwise, which only a process with CAP_SYS_RESOURCE may set; where bench runs without it (a
container, a CI sandbox) every `podman run` fails ("setrlimit RLIMIT_NOFILE: Operation not
permitted"). The container is therefore given the hard limits its service has, as a Docker
container inherits dockerd's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .. import settings
from ..errors import BenchError
from .base import Availability, Leftover, Refusal
from .container import LABEL_ENV, LABEL_RUN
from .container_spec import DockerVariant
from .docker import DockerEnvironment
from .private_daemon import PrivateDaemon, owned_folders, recorded_pid, stop_pid
from .private_daemon import folder_name as _hashed

STOP_TIMEOUT = 30.0
CONTAINER_INIT = "/usr/libexec/podman/catatonit"  # what --init runs (Debian package catatonit)


class PodmanVariant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # nat: Podman's default network, ports published on 127.0.0.1 (iptables DNAT by its
    # network backend); host: the host's network stack
    network: Literal["nat", "host"] = "nat"
    storage: Literal["volume", "overlay"] = "volume"
    # The OCI runtime its containers run with: runc, as Docker's, so that the engine is what
    # differs; not whichever Podman was installed with (Debian's may bring crun, which cannot
    # run where cgroups are in hybrid mode: "cgroups in hybrid mode not supported").
    runtime: str = "runc"


def root() -> Path:
    """Where a run's Podman services keep their folders (BENCH_PODMAN_ROOT)."""
    return settings.current().podman_root


def folder_name(run_id: str, environment: str) -> str:
    return _hashed(f"podman/{run_id}/{environment}")


def hard_limits(pid: int) -> dict[str, int]:
    """The hard limits of a process that the runtime cannot exceed: {"nofile": N, "nproc": N}."""
    names = {"Max open files": "nofile", "Max processes": "nproc"}
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        for label, key in names.items():
            if line.startswith(label):
                hard = line[len(label):].split()[1]
                if hard.isdigit():
                    found[key] = int(hard)
    return found


class PodmanService(PrivateDaemon):
    """The `podman system service` of one environment of one run: the Docker-compatible API
    bench talks to, started and stopped by its pid as every daemon of bench's own is."""

    what = "podman system service"
    socket_name = "podman.sock"
    log_name = "service.log"

    def __init__(self, run_id: str, environment: str, runtime: str = "runc"):
        super().__init__(run_id, environment, root() / folder_name(run_id, environment))
        self.runtime = runtime   # the OCI runtime of every container made through this service

    def start(self) -> None:
        self.make_folder()
        self.launch(["podman", "--runtime", self.runtime, "system", "service", "--time=0", self.base_url])

    def stop(self) -> None:
        """The run's containers and volumes (they outlive the service: conmon holds them), then
        the service, then its folder. Safe to call twice."""
        remove_labelled(self.run_id, self.environment)
        stop_service(self.folder, self.pid)


def _podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)


def labelled(run_id: str | None, environment: str | None = None) -> list[tuple[str, str, str]]:
    """(what, name, run id) of the containers and volumes in Podman's store carrying a run's
    label (any run's when run_id is None; one environment's if named); asked of podman itself,
    no service needed."""
    if shutil.which("podman") is None:
        return []
    selector = ["--filter", f"label={LABEL_RUN}={run_id}" if run_id else f"label={LABEL_RUN}"]
    if environment:
        selector += ["--filter", f"label={LABEL_ENV}={environment}"]
    found = []
    for what, args in (("container", ["ps", "-a"]), ("volume", ["volume", "ls"])):
        r = _podman(*args, *selector, "--format", "json")
        if r.returncode != 0:
            continue
        for item in json.loads(r.stdout or "[]") or []:
            labels = item.get("Labels") or {}
            name = item.get("Names", [item.get("Name", "?")])
            found.append((what, name[0] if isinstance(name, list) else name, labels.get(LABEL_RUN, "?")))
    return found


def remove_labelled(run_id: str, environment: str | None = None) -> None:
    """Remove a run's containers, then its volumes, from Podman's store."""
    left = []
    for what, name, _ in labelled(run_id, environment):
        r = _podman(*(["rm", "-f", "-v"] if what == "container" else ["volume", "rm", "-f"]), name)
        if r.returncode != 0 and "no such" not in r.stderr.lower():
            left.append(f"{what} {name}: {r.stderr.strip()[:200]}")
    if left:
        raise BenchError(f"podman could not remove {'; '.join(left)}")


def stop_service(folder: Path, pid: int | None = None) -> None:
    """Stop a service by its pid (only while its command line names its folder's socket: the
    number may be someone else's by now) and remove its folder."""
    pid = pid if pid is not None else recorded_pid(folder)
    stop_pid(pid, str(folder / PodmanService.socket_name), STOP_TIMEOUT)  # only while it names our socket
    shutil.rmtree(folder, ignore_errors=True)
    if folder.exists():
        raise BenchError(f"could not remove {folder}")


class PodmanEnvironment(DockerEnvironment):
    """A container of Podman's, through the Docker container handle: only the engine differs."""

    kind = "podman"
    study_configuration = ""  # the study measured no such thing
    Variant = PodmanVariant
    cleanup_order = 40

    @classmethod
    def prepare_image(cls, recipe: Any, force: bool = False) -> str:
        return ""  # imported into Podman's store on first use, through the run's service

    @classmethod
    def image_status(cls, recipe: Any) -> list[str]:
        return []

    @classmethod
    def leftovers(cls, run_id: str | None) -> list[Leftover]:
        return leftovers(run_id)

    @classmethod
    def doctor_checks(cls) -> list:
        from ..checks import OK, WARN, Check

        ok, why = cls.availability(PodmanVariant())
        return [Check("environments", "podman", OK if ok else WARN, why,
                      "" if ok else "apt-get install podman catatonit")]

    @classmethod
    def container_spec(cls, variant: BaseModel) -> DockerVariant:
        # The container Docker's code makes through Podman's API; the runtime is the service's.
        return DockerVariant(network=variant.network, storage=variant.storage)

    @classmethod
    def availability(cls, variant: BaseModel, allow_tcg: bool = False) -> Availability:
        try:
            import docker  # noqa: F401
        except ImportError:
            return Availability(False, "the docker Python package (the API client Podman is spoken to with) is missing")
        if os.geteuid() != 0:
            return Availability(False, "bench runs Podman rootful: it needs root")
        if shutil.which("podman") is None:
            return Availability(False, "podman is not on PATH (apt-get install podman catatonit)")
        if not Path(CONTAINER_INIT).exists():
            return Availability(False, f"{CONTAINER_INIT} is missing (apt-get install catatonit): Podman's --init")
        if shutil.which(variant.runtime) is None:
            return Availability(False, f"the OCI runtime {variant.runtime} is not on PATH")
        r = _podman("version", "--format", "{{.Client.Version}}", timeout=30)
        if r.returncode != 0:
            return Availability(False, f"podman does not answer: {r.stderr.strip()[:200]}")
        return Availability(True, f"podman {r.stdout.strip()}, rootful, OCI runtime {variant.runtime}, through "
                                  f"a `podman system service` of the run's own; the image is imported into its "
                                  f"store on first use")

    @classmethod
    def intended_difference(cls, key: str, variant: BaseModel, cpu_differs: bool) -> str:
        if key == "limit.nproc":
            return ("Podman's own hard limit of processes: its service lowers it, and a container cannot "
                    "have more than the service it is started by")
        return super().intended_difference(key, variant, cpu_differs)  # a container's, as Docker's

    @classmethod
    def remote_client_refusal(cls, variant: BaseModel) -> Refusal | None:
        return None

    def _own_daemon(self):
        return PodmanService(self.run_id, self.name, self.variant.runtime)

    def teardown(self) -> None:
        """As Docker's; where the service no longer answers (killed, or its run cleaned up),
        the API cannot remove the container, but the service's stop() removes the run's
        containers and volumes with podman itself: only what is still there is an error."""
        try:
            super().teardown()
        except RuntimeError:
            still = labelled(self.run_id, self.name)
            if still:
                raise RuntimeError(f"left {', '.join(f'{what} {name}' for what, name, _ in still)} "
                                   f"(`bench cleanup --run-id {self.run_id}`)") from None

    def _engine_limits(self) -> dict[str, int]:
        # The service's own hard limits, which the runtime can set without CAP_SYS_RESOURCE.
        return hard_limits(self.daemon.pid)

    def _nat_path(self) -> str:
        if self.variant.network == "host":
            return "none"
        # Rootful Podman publishes through its network backend's iptables DNAT, for a loopback
        # client too (OUTPUT chain); conmon only holds the port. No user-space copy on the path,
        # unlike docker-nat's docker-proxy: compare with docker-nat-dnat for the kernel's path.
        return f"iptables DNAT by {self._host_info().get('network_backend', 'its network backend')} on " \
               f"{self.publish_address} (conmon holds the port; no user-space proxy)"

    def _host_info(self) -> dict[str, str]:
        r = _podman("--runtime", self.variant.runtime, "info", "--format",
                    "{{.Host.OCIRuntime.Name}}|{{.Host.NetworkBackend}}|{{.Host.OCIRuntime.Version}}", timeout=60)
        parts = r.stdout.strip().split("|", 2) if r.returncode == 0 else []
        if len(parts) < 3:
            return {}
        return {"oci_runtime": parts[0].strip(), "network_backend": parts[1].strip(),
                "oci_runtime_version": parts[2].strip().splitlines()[0] if parts[2].strip() else ""}

    def metadata(self) -> dict[str, Any]:
        meta = super().metadata()
        version = self._client.version()
        host = self._host_info()
        meta.update({
            "env_kind": self.kind,
            "engine": "podman",
            "podman_version": version.get("Version", ""),
            "runtime": host.get("oci_runtime", meta.get("runtime", "")),
            "runtime_version": host.get("oci_runtime_version", ""),
            "network_backend": host.get("network_backend", ""),
            "docker_daemon": "none",
            "podman_service": str(self.daemon.folder) if self.daemon else "",
            "ulimits": ",".join(f"{u['Name']}={u['Hard']}" for u in
                                (self.container.attrs["HostConfig"].get("Ulimits") or [])) or "none",
        })
        return meta


def leftovers(run_id: str | None) -> list[Leftover]:
    """What killed runs left in Podman: the containers and volumes labelled with their run, then
    the services (stopped by pid, folder removed)."""
    found = [Leftover(f"podman {what}", name, who,
                      lambda n=name, w=what: _podman(*(["rm", "-f", "-v"] if w == "container"
                                                       else ["volume", "rm", "-f"]), n))
             for what, name, who in labelled(run_id)]
    for folder, who in owned_folders(root()):
        if run_id is None or who == run_id:
            found.append(Leftover("podman service", str(folder), who or "?", lambda f=folder: stop_service(f)))
    return found
