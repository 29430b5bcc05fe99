"""Environment kinds, found by name. A kind whose Python library is missing is reported as
unavailable by `bench list` instead of breaking the import of bench."""

from __future__ import annotations

from .base import Environment, ExecResult, Server, wait_for_port
from .compose import ComposeEnvironment
from .docker import DockerEnvironment
from .host import HostEnvironment
from .libvirt import LibvirtEnvironment
from .unsupported import UnsupportedEnvironment
from .swarm import SwarmEnvironment

KINDS: dict[str, type[Environment]] = {
    HostEnvironment.kind: HostEnvironment,
    DockerEnvironment.kind: DockerEnvironment,
    LibvirtEnvironment.kind: LibvirtEnvironment,
    UnsupportedEnvironment.kind: UnsupportedEnvironment,
    ComposeEnvironment.kind: ComposeEnvironment,
    SwarmEnvironment.kind: SwarmEnvironment,
}

__all__ = ["Environment", "ExecResult", "Server", "KINDS", "wait_for_port"]
