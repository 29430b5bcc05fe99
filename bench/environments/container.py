"""One container of the workload image as bench uses it, through the Engine API (dockerd's, or
Podman's compatible one): the engine's clients, a handle on the container (made idle and
labelled with its run, a command to completion under a timeout, files in and out, a server in
the background, its removal), and the environment that runs its tools in one such container.
Docker's, Podman's, Swarm's and Compose's environments are built on it."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel

from .base import SERVER_SCRIPT, Availability, Environment, ExecResult, PidFileServer, Server
from .container_spec import DockerVariant, intended_difference

LABEL_RUN = "bench.run_id"
LABEL_ENV = "bench.environment"
CONTROL_TIMEOUT = 120            # seconds, for API calls that do not wait on a tool
STREAM_TIMEOUT = 7 * 24 * 3600   # the exec socket stays open as long as the tool runs


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
        return intended_difference(key, DockerVariant(), cpu_differs)  # a plain container

    def _provision(self, scratch_root: str, n_ports: int) -> None:
        """Nothing: its owner made it (a peer's owner calls make())."""

    def teardown(self) -> None:
        """Nothing: its owner removes it."""

    def endpoint(self, port: int) -> tuple[str, int]:
        return self.publish_address, port

    def metadata(self) -> dict[str, Any]:
        return {"container_id": self.container.id[:12] if self.container is not None else ""}
