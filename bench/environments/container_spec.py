"""What a container of the workload image is asked of the engine: the variant in Docker's terms,
and the Docker SDK's keyword arguments made from it.

`container_options` is pure (the variant and what provisioning made, in; the keyword arguments
of `containers.run`, out), so that golden files (tests/data/container/) cover every Docker and
Podman variant of workloads/environments.yaml, as the domain XML's do for the guests: a change
of what a container is asked for shows as a diff of those files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

WORKDIR = "/bench/work"   # the scratch folder inside every container (a volume's mount point)


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



def container_options(spec: DockerVariant, publish_address: str, ports: Sequence[int], *,
                      network: str | None = None, volume: str | None = None,
                      ulimits: Mapping[str, int] | None = None,
                      protocols: Sequence[str] = ("tcp", "udp")) -> dict[str, Any]:
    """The keyword arguments of the Docker SDK's `containers.run` (besides the image, name,
    labels and command every container gets) for a container of `spec`: its network (the
    run's own bridge network by name, or the host's stack), its ports published under the same
    number on publish_address (both protocols: a server's data connection may be UDP, netperf
    UDP_RR), its volume mounted as WORKDIR, its runtime, limits and security profile, and the
    hard limits the engine calls for (Podman's service's: see podman.py)."""
    kwargs: dict[str, Any] = {}
    if spec.network == "host":
        kwargs["network_mode"] = "host"
    else:
        if network:
            kwargs["network"] = network
        if ports:
            kwargs["ports"] = {f"{p}/{proto}": (publish_address, p) for p in ports for proto in protocols}
    if volume:
        kwargs["volumes"] = {volume: {"bind": WORKDIR, "mode": "rw"}}
    if spec.runtime:
        kwargs["runtime"] = spec.runtime
    if spec.cpus:
        kwargs["nano_cpus"] = int(spec.cpus * 1e9)
    if spec.memory:
        kwargs["mem_limit"] = spec.memory
    security = [f"{layer}=unconfined" for layer in ("seccomp", "apparmor") if getattr(spec, layer) == "unconfined"]
    if security:
        kwargs["security_opt"] = security
    if spec.cap_drop:
        kwargs["cap_drop"] = list(spec.cap_drop)
    if ulimits:
        kwargs["ulimits"] = [{"name": name, "soft": value, "hard": value} for name, value in sorted(ulimits.items())]
    return kwargs


def intended_difference(key: str, spec: DockerVariant, cpu_differs: bool) -> str:
    """Why the parity probe's `key` may differ from native's in a container of this spec (the
    limits, runtime or storage it asks for), or "" when nothing it asks for explains it."""
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
