"""The host's CPU topology from sysfs, and the tuned guest's vCPU pinning that follows it.

The study's tuned guest had the host's topology and each vCPU pinned to the host CPU in the same
place. "The same place" is a (socket, core, thread) position, not a CPU number: QEMU numbers a
guest's vCPUs thread-fastest (vCPU 1 is core 0's second thread), while Linux on the study's host
numbered thread siblings N and N+16, so pinning vCPU i to host CPU i would give the guest's
sibling threads two different physical cores, and its scheduler a topology that is not there.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

SYSFS_CPU = Path("/sys/devices/system/cpu")


@dataclasses.dataclass(frozen=True, order=True)
class CpuPosition:
    socket: int   # rank of the package id
    core: int     # rank of the core id within its socket
    thread: int   # rank of the CPU among its core's siblings
    cpu: int      # Linux's CPU number


@dataclasses.dataclass(frozen=True)
class HostTopology:
    positions: tuple[CpuPosition, ...]   # sorted by (socket, core, thread): QEMU's vCPU order

    @property
    def shape(self) -> tuple[int, int, int]:
        """(sockets, cores per socket, threads per core)."""
        sockets = len({p.socket for p in self.positions})
        threads = len({p.thread for p in self.positions})
        return sockets, max(len(self.positions) // (sockets * threads), 1), threads

    def pinning(self, vcpus: int) -> tuple[int, ...] | None:
        """The host CPU of each vCPU. A guest with all CPUs gets the host's topology, so vCPU i
        goes where its position is; a smaller guest one vCPU per physical core first (thread 0
        of every core, socket by socket), then their siblings. None if it has more vCPUs."""
        if vcpus > len(self.positions):
            return None
        if vcpus == len(self.positions):
            return tuple(p.cpu for p in self.positions)
        order = sorted(self.positions, key=lambda p: (p.thread, p.socket, p.core))
        return tuple(p.cpu for p in order[:vcpus])

    @classmethod
    def uniform(cls, sockets: int, cores: int, threads: int, siblings_apart: bool = False) -> "HostTopology":
        """A regular host. siblings_apart numbers thread siblings N and N + sockets*cores (the
        study's host, and most two-socket Intel servers); otherwise siblings are adjacent."""
        positions = []
        for s in range(sockets):
            for c in range(cores):
                for t in range(threads):
                    cpu = (t * sockets * cores + s * cores + c) if siblings_apart else ((s * cores + c) * threads + t)
                    positions.append(CpuPosition(s, c, t, cpu))
        return cls(tuple(sorted(positions)))


def read_topology(root: Path = SYSFS_CPU) -> HostTopology:
    """The online CPUs' positions, from each CPU's topology/ folder."""
    raw = []
    for topo in root.glob("cpu[0-9]*/topology"):
        cpu = int(topo.parent.name[3:])
        package = _read_int(topo / "physical_package_id", 0)
        core = _read_int(topo / "core_id", cpu)
        siblings = _cpu_list(_read(topo / "thread_siblings_list") or str(cpu))
        raw.append((package, core, sorted(siblings).index(cpu) if cpu in siblings else 0, cpu))
    if not raw:
        return HostTopology((CpuPosition(0, 0, 0, 0),))
    sockets = {p: i for i, p in enumerate(sorted({r[0] for r in raw}))}
    cores = {(p, c): i for p in sockets
             for i, c in enumerate(sorted({r[1] for r in raw if r[0] == p}))}
    return HostTopology(tuple(sorted(CpuPosition(sockets[p], cores[(p, c)], t, cpu) for p, c, t, cpu in raw)))


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _read_int(path: Path, default: int) -> int:
    text = _read(path)
    return int(text) if text.lstrip("-").isdigit() else default


def _cpu_list(text: str) -> list[int]:
    """sysfs's CPU list format: "0,16" or "0-1,8-9"."""
    cpus: list[int] = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        cpus += range(int(lo), int(hi or lo) + 1)
    return cpus
