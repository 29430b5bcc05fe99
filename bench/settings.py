"""Where bench keeps what it makes on this machine, and what its workload image is made of.

The user-facing variables (BENCH_CACHE_DIR, BENCH_IMAGE_*, the daemons' roots...) are read
once, by the command line, into one `Settings`; every module asks `current()` for what it needs
instead of reading the process environment itself, so that a value cannot differ between two
modules of one run, and a test states the settings it runs with (tests/conftest.py).
Nothing here imports any other part of bench: everything may import it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path


class SettingsError(ValueError):
    """A user's variable that cannot mean anything: one line, before anything is done."""


def _host_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip('"') or "bookworm"
    except OSError:
        pass
    return "bookworm"


@dataclasses.dataclass(frozen=True)
class Settings:
    # The image's root file system, VM disks and boot files, the KVM probe's answer.
    cache_dir: Path = Path("/var/cache/bench")
    # Second dockerds and Podman services of a run: one folder each (their sockets are in it).
    dockerd_root: Path = Path("/var/lib/bench-dockerd")
    podman_root: Path = Path("/var/lib/bench-podman")
    # Which run made this machine a swarm manager (its marker), for cleanup.
    swarm_markers: Path = Path("/var/lib/bench/swarm")
    libvirt_uri: str = "qemu:///system"
    vm_dir: Path = Path("/var/lib/libvirt/images")   # a run's guest disks
    # Worker processes of the report's figures and tests; 0: one per CPU this process may use.
    workers: int = 0
    # The workload image (image.recipe()): the Debian release and mirrors it is made from, and
    # the packages the workloads need (their modules name them; the caller collects them).
    image_release: str = dataclasses.field(default_factory=_host_release)
    image_mirror: str = "http://deb.debian.org/debian"
    image_security_mirror: str = "http://deb.debian.org/debian-security"
    tool_packages: tuple[str, ...] = ()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], tool_packages: tuple[str, ...]) -> "Settings":
        """The settings a user's variables ask for; unset or empty ones keep their defaults."""
        def path(name: str, default: Path) -> Path:
            if not environ.get(name):
                return default
            found = Path(environ[name])
            if found.exists() and not found.is_dir():
                raise SettingsError(f"{name}={environ[name]!r}: not a folder; name a folder (or unset it: "
                                    f"{default})")
            return found

        d = cls()
        given = (environ.get("BENCH_WORKERS") or "").strip()
        if given and not (given.isdigit() and int(given) <= 1024):
            raise SettingsError(f"BENCH_WORKERS={environ['BENCH_WORKERS']!r}: a number of worker processes "
                                f"from 0 to 1024 (1: none; unset or 0: one per CPU)")
        workers = int(given or 0)
        for name in ("BENCH_IMAGE_MIRROR", "BENCH_IMAGE_SECURITY_MIRROR"):
            if environ.get(name) and not environ[name].startswith(("http://", "https://", "file:/")):
                raise SettingsError(f"{name}={environ[name]!r}: a Debian mirror's URL (http://, https:// "
                                    f"or file:/)")
        return cls(cache_dir=path("BENCH_CACHE_DIR", d.cache_dir),
                   dockerd_root=path("BENCH_DOCKERD_ROOT", d.dockerd_root),
                   podman_root=path("BENCH_PODMAN_ROOT", d.podman_root),
                   swarm_markers=path("BENCH_SWARM_MARKERS", d.swarm_markers),
                   libvirt_uri=environ.get("BENCH_LIBVIRT_URI") or d.libvirt_uri,
                   vm_dir=path("BENCH_VM_DIR", d.vm_dir),
                   workers=workers,
                   image_release=environ.get("BENCH_IMAGE_RELEASE") or d.image_release,
                   image_mirror=environ.get("BENCH_IMAGE_MIRROR") or d.image_mirror,
                   image_security_mirror=environ.get("BENCH_IMAGE_SECURITY_MIRROR") or d.image_security_mirror,
                   tool_packages=tuple(sorted(set(tool_packages))))


# The user's variables, as `bench --help` lists them (docs/configuration.md says the same; a test checks).
VARIABLES = {
    "BENCH_CONFIG_DIR": "the data folder (suites, workloads, environments); --config-dir",
    "BENCH_CACHE_DIR": "the image's root file system, VM disks, KVM probe (/var/cache/bench)",
    "BENCH_IMAGE_RELEASE": "the Debian release the image is made of (the host's)",
    "BENCH_IMAGE_MIRROR": "the Debian mirror (http://deb.debian.org/debian)",
    "BENCH_IMAGE_SECURITY_MIRROR": "its security mirror (http://deb.debian.org/debian-security)",
    "BENCH_DOCKERD_ROOT": "a run's second dockerds (/var/lib/bench-dockerd)",
    "BENCH_PODMAN_ROOT": "a run's Podman services (/var/lib/bench-podman)",
    "BENCH_SWARM_MARKERS": "which run made this host a swarm manager (/var/lib/bench/swarm)",
    "BENCH_LIBVIRT_URI": "libvirtd's URI (qemu:///system)",
    "BENCH_VM_DIR": "a run's guest disks (/var/lib/libvirt/images)",
    "BENCH_WORKERS": "the report's worker processes; 1: none (default: one per CPU)",
}

_current: Settings | None = None


def use(settings: Settings) -> None:
    """These are the settings of this process from now on (the command line; a test's set-up)."""
    global _current
    _current = settings


def current() -> Settings:
    """The settings in use; the defaults in a program that set none (a notebook reading runs),
    which know no workload's packages, so that such a program cannot build an image."""
    return _current or _DEFAULTS


_DEFAULTS = Settings()
