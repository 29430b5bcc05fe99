"""A multi-container application as Docker Compose runs it, from a compose file under workloads/.

The compose file is the one definition of the topology: its services, the networks they share,
the ports it publishes. bench runs it with Debian's `docker-compose` (1.29) as the project
bench-<run-id>-<environment>, and adds nothing to the topology; a second file it writes (`-f`)
adds only bench's bookkeeping: the run-id labels on every container, network and volume (what
`bench cleanup` finds), and `sleep infinity` under an init as each container's command, because
the workload execs its servers into the containers at every repetition, as it does in bench's
other containers. Compose replaces, rather than merges, a network or volume an override file
names, so that file repeats each one's definition (as `docker-compose config` read it) with
the labels added.

Every service runs the workload image (the file says `image: ${BENCH_IMAGE}`) and publishes
only on 127.0.0.1: the file is checked for both before anything is made. bench's free ports go
to the file as BENCH_PORT_0, BENCH_PORT_1, ... and are published under the same number.

A workload addresses one service with service(name) and reaches another service's port by its
name, through Compose's DNS on their shared network (service_address). The environment as a
whole (programs, tool versions) is its first service: every service runs the same image. It
runs only workloads whose `services` its compose file defines (runs()); the plan leaves other
cells out.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from .. import datadir, datafile, owner
from ..errors import BenchError, ConfigError
from .base import Availability, Environment, ExecResult, Refusal, Server
from .container import LABEL_ENV, LABEL_RUN, ContainerHandle, OwnedContainer, client, engine_errors
from .container_spec import WORKDIR, DockerVariant
from .docker import DockerEnvironment
from .host import free_loopback_ports, run_argv

COMPOSE = "docker-compose"
LABEL_PROJECT = "com.docker.compose.project"
LABEL_SERVICE = "com.docker.compose.service"
COMPOSE_TIMEOUT = 300.0  # seconds for `up` or `down` of a few containers


class ComposeVariant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    file: str  # the compose file, relative to the configuration folder (workloads/)


def compose_path(file: str) -> Path:
    return datadir.path(file)


def read_services(file: str) -> list[str]:
    """The services a compose file defines, in its own order. Raises ConfigError."""
    path = compose_path(file)
    doc = datafile.read_yaml(path)
    services = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(services, dict) or not services:
        raise ConfigError(f"{path}: a compose file needs a `services` mapping")
    return list(services)


def project_name(run_id: str, env_name: str) -> str:
    # docker-compose 1.29 drops every character but [-_a-z0-9] from a project name.
    return re.sub(r"[^-_a-z0-9]", "", f"bench-{run_id}-{env_name}".lower())


def check_topology(config: dict[str, Any], image_tag: str, path: Path) -> None:
    """What bench needs of a compose file, on `docker-compose config`'s reading of it."""
    for name, svc in config.get("services", {}).items():
        if svc.get("build"):
            raise ConfigError(f"{path}: service {name} has `build`: bench's services run the workload "
                              f"image (image: ${{BENCH_IMAGE}}), built from Debian packages, not a Dockerfile")
        if svc.get("image") != image_tag:
            raise ConfigError(f"{path}: service {name} runs {svc.get('image')!r}: every service runs the "
                              f"workload image (image: ${{BENCH_IMAGE}}), so that each runs the host's binaries")
        for port in svc.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
            if host_ip != "127.0.0.1":
                raise ConfigError(f"{path}: service {name} publishes {port!r} beyond 127.0.0.1: bench "
                                  f"publishes ports only on the host's loopback")
        if svc.get("network_mode") == "host":
            raise ConfigError(f"{path}: service {name} has network_mode: host, which would expose its "
                              f"servers on the host's interfaces")
    for kind in ("networks", "volumes"):
        for name, definition in (config.get(kind) or {}).items():
            if (definition or {}).get("external"):
                raise ConfigError(f"{path}: {kind[:-1]} {name} is external: bench makes and removes "
                                  f"everything a run uses")


def bookkeeping(config: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """The override file: labels and a long-lived command for every service, labels for every
    network and volume (each one's whole definition repeated: Compose replaces, not merges)."""
    services = {name: {"command": ["sleep", "infinity"], "init": True, "labels": labels}
                for name in config["services"]}
    networks = {name: {**(d or {}), "labels": {**((d or {}).get("labels") or {}), **labels}}
                for name, d in (config.get("networks") or {}).items()}
    if any("networks" not in s and "network_mode" not in s for s in config["services"].values()):
        networks.setdefault("default", {"labels": labels})  # the network Compose makes for them
    volumes = {name: {**(d or {}), "labels": {**((d or {}).get("labels") or {}), **labels}}
               for name, d in (config.get("volumes") or {}).items()}
    doc: dict[str, Any] = {"version": config.get("version", "3.7"), "services": services}
    if networks:
        doc["networks"] = networks
    if volumes:
        doc["volumes"] = volumes
    return doc


class ServiceContainer(OwnedContainer):
    """One service's container, made by Compose: exec'ed into like bench's own containers, but
    made and removed by the Compose environment it belongs to (`docker-compose down`)."""

    def __init__(self, name: str, run_id: str, container, api_client, stream_client, image, **given: Any):
        super().__init__(name, run_id, **given)
        self.handle = ContainerHandle(container, api_client, stream_client)
        self.image = image
        self.workdir = WORKDIR


class ComposeEnvironment(Environment):
    kind = "compose"
    Variant = ComposeVariant

    @classmethod
    def intended_difference(cls, key: str, variant: BaseModel, cpu_differs: bool) -> str:
        # its services are plain containers
        return DockerEnvironment.intended_difference(key, DockerVariant(), cpu_differs)

    def __init__(self, name: str, variant: BaseModel | dict[str, Any], run_id: str, **given: Any):
        super().__init__(name, variant, run_id, **given)
        self.path = compose_path(self.variant.file)
        self.project = project_name(run_id, name)
        self.services: dict[str, ServiceContainer] = {}
        self.image = None
        self.scratch = ""            # on the host: bench's override file
        self.compose_env: dict[str, str] = {}
        self._files: dict[str, str] = {}
        self._client = None
        self._stream = None

    # -- before anything is made ------------------------------------------------------------

    @classmethod
    def backend_errors(cls) -> tuple[type[BaseException], ...]:
        return engine_errors()   # docker-compose and its containers are dockerd's

    @classmethod
    def remote_client_refusal(cls, variant: BaseModel) -> Refusal | None:
        return Refusal("a compose file publishes on 127.0.0.1 only (bench refuses any other address in it); "
                       "run it with clients on this host (no --client-host)")

    @classmethod
    def availability(cls, variant: BaseModel, allow_tcg: bool = False) -> Availability:
        ok, why = DockerEnvironment.availability(DockerVariant())
        if not ok:
            return Availability(False, why)
        if shutil.which(COMPOSE) is None:
            return Availability(False, f"{COMPOSE} is missing: apt-get install docker-compose "
                                       f"(or run scripts/setup.sh)")
        try:
            services = read_services(variant.file)
        except (ConfigError, ValueError) as e:
            return Availability(False, str(e))
        version = run_argv([COMPOSE, "version", "--short"], timeout=30)
        if not version.ok:
            said = (version.stderr or version.stdout).strip()[:200]
            return Availability(False, f"`{COMPOSE} version` failed: {said}")
        return Availability(True, f"{COMPOSE} {version.stdout.strip()}, services {', '.join(services)}; {why}")

    @classmethod
    def refusal(cls, variant: BaseModel, workload: Any) -> Refusal | None:
        try:
            services = read_services(variant.file)
        except (ConfigError, ValueError) as e:
            return Refusal(str(e))
        if not workload.services:
            return Refusal(f"it runs only multi-tier workloads (its compose file defines {', '.join(services)})")
        missing = [s for s in workload.services if s not in services]
        if missing:
            return Refusal(f"its compose file defines no service {', '.join(missing)}")
        return None

    # -- life cycle --------------------------------------------------------------------------

    def _provision(self, scratch_root: str, n_ports: int) -> None:
        from .. import image

        self._client = client()
        self._stream = client(timeout=7 * 24 * 3600)
        recipe = image.recipe()
        self.image = image.docker_image(self._client, recipe)
        self.ports = free_loopback_ports(n_ports)
        os.makedirs(scratch_root, exist_ok=True)
        # The run id in the name is how `bench cleanup` recognises a killed run's leftovers.
        self.scratch = tempfile.mkdtemp(prefix=f"bench-{self.run_id}-{self.name}-", dir=scratch_root)
        owner.mark(self.scratch, self.run_id)
        self.compose_env = {"BENCH_IMAGE": recipe.tag, **{f"BENCH_PORT_{i}": str(p) for i, p in enumerate(self.ports)}}
        self._files["compose.yaml"] = self.path.read_text()

        config_text = self._compose(["config"]).stdout
        self._files["compose.config.yaml"] = config_text
        config = yaml.safe_load(config_text)
        check_topology(config, recipe.tag, self.path)
        override = yaml.safe_dump(bookkeeping(config, {LABEL_RUN: self.run_id, LABEL_ENV: self.name}),
                                  sort_keys=False)
        Path(self.scratch, "bench.override.yaml").write_text(override)
        self._files["bench.override.yaml"] = override

        self._compose(["up", "--detach", "--no-build", "--no-color"], override=True)
        found = self._client.containers.list(all=True, filters={"label": f"{LABEL_PROJECT}={self.project}"})
        for c in found:
            if c.labels.get(LABEL_RUN) != self.run_id:  # labels are what cleanup relies on
                raise BenchError(f"{c.name} lacks the label {LABEL_RUN}={self.run_id}")
            service = c.labels[LABEL_SERVICE]
            self.services[service] = ServiceContainer(f"{self.name}/{service}", self.run_id, c, self._client,
                                                      self._stream, self.image, **self.passed_on())
        for service in config["services"]:
            env = self.services.get(service)
            if env is None:
                raise BenchError(f"docker-compose made no container for service {service}")
            r = env.exec(["mkdir", "-p", WORKDIR], timeout=30, cwd="/")
            if not r.ok:
                raise BenchError(f"cannot make {WORKDIR} in service {service}: {r.stderr.strip()}")
        self.services = {s: self.services[s] for s in config["services"]}  # the file's order
        self.workdir = WORKDIR

    def teardown(self) -> None:
        import docker.errors

        if self.scratch:
            override = Path(self.scratch, "bench.override.yaml").exists()
            self._compose(["down", "--volumes", "--remove-orphans", "--timeout", "5"], override=override,
                          check=False)
        for env in self.services.values():
            env.teardown()
        self.services.clear()
        # Whatever `down` left (a killed `up`, a failed `down`): by the labels, this environment's only.
        if self._client is not None:
            selector = {"label": [f"{LABEL_RUN}={self.run_id}", f"{LABEL_ENV}={self.name}"]}
            for c in self._client.containers.list(all=True, filters=selector):
                try:
                    c.remove(force=True, v=True)
                except docker.errors.NotFound:
                    pass
            for collection in (self._client.networks, self._client.volumes):
                for x in collection.list(filters=selector):
                    try:
                        x.remove()
                    except docker.errors.NotFound:
                        pass
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = ""
        for c in (self._client, self._stream):
            if c is not None:
                c.close()
        self._client = self._stream = None

    def _compose(self, args: list[str], override: bool = False, check: bool = True) -> ExecResult:
        files = ["-f", str(self.path)]
        if override:
            files += ["-f", str(Path(self.scratch, "bench.override.yaml"))]
        argv = [COMPOSE, "--project-name", self.project, "--project-directory", str(self.path.parent), *files, *args]
        # Only what Compose needs from bench's own environment, and the file's variables.
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST", "LANG", "LC_ALL")}
        r = run_argv(argv, COMPOSE_TIMEOUT, env={**env, **self.compose_env})
        if check and not r.ok:
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
            raise BenchError(f"`{COMPOSE} {args[0]}` of {self.path} failed: {tail[0]}")
        return r

    # -- using it ----------------------------------------------------------------------------

    @property
    def primary(self) -> ServiceContainer:
        if not self.services:
            raise RuntimeError(f"{self.name} is not provisioned")
        return next(iter(self.services.values()))

    def service(self, name: str) -> Environment:
        if name not in self.services:
            raise BenchError(f"{self.path} defines no service {name} (it has {', '.join(self.services)})")
        return self.services[name]

    def service_address(self, name: str, port: int) -> tuple[str, int]:
        # Compose's DNS answers a service's name on every network the service is on.
        return name, port

    def _exec(self, argv: list[str], timeout: float, cwd: str | None) -> ExecResult:
        return self.primary._exec(argv, timeout, cwd)  # argv is wrapped already

    def _put_file(self, path: str, data: bytes) -> None:
        self.primary.put_file(path, data)

    def _get_file(self, path: str) -> bytes:
        return self.primary.get_file(path)

    def _start_server(self, argv: list[str], log_name: str) -> Server:
        return self.primary._start_server(argv, log_name)

    def wait_listening(self, port: int, timeout: float) -> bool:
        return self.primary.wait_listening(port, timeout)

    def endpoint(self, port: int) -> tuple[str, int]:
        # The file publishes on the host's loopback under the same number (checked above).
        return "127.0.0.1", port

    def artifacts(self) -> dict[str, str]:
        return dict(self._files)

    def metadata(self) -> dict[str, Any]:
        from .. import image

        info = self._client.info()
        version = run_argv([COMPOSE, "version", "--short"], timeout=30).stdout.strip()
        networks = self._client.networks.list(filters={"label": f"{LABEL_PROJECT}={self.project}"})
        return {
            "env_kind": self.kind,
            "compose_version": version,
            "compose_project": self.project,
            "compose_file": str(self.path),
            "compose_file_sha256": hashlib.sha256(self._files.get("compose.yaml", "").encode()).hexdigest()[:16],
            "services": ",".join(self.services),
            "containers": ",".join(f"{s}={e.container.id[:12]}" for s, e in self.services.items()),
            "networks": ",".join(f"{n.name}({n.attrs.get('Driver', '')})" for n in networks) or "none",
            "docker_version": self._client.version().get("Version", ""),
            "storage_driver": info.get("Driver", ""),
            "cgroup_driver": info.get("CgroupDriver", ""),
            "nat_path": "docker-proxy (loopback client)",
            "image_tag": image.recipe().tag,
            "image_id": self.image.id,
        }
