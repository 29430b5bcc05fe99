"""The host's CPU time, counted machine-wide: what a network transfer costs the machine.

The study's CPU cost of a transfer is the whole host's busy time (`perf stat -a`), because the
host carries both ends: the client, the environment's server (a container's processes, a VM's
QEMU threads) and the network path between them (softirqs, docker-proxy, QEMU's user-mode net).
These counters include whatever else runs on the host meanwhile, so they are only as clean as
the machine is quiet.
"""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class CpuTimes:
    busy: float  # seconds across all CPUs: user, nice, system, irq, softirq, steal
    idle: float  # seconds across all CPUs: idle and iowait (waiting is not work)


def cpu_times(stat: str | None = None) -> CpuTimes:
    """Machine-wide CPU seconds since boot, from /proc/stat's aggregate `cpu` line."""
    if stat is None:
        with open("/proc/stat") as f:
            stat = f.read()
    for line in stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            # user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is
            # already inside user and nice, so it is not added again.
            ticks = [int(v) for v in fields[1:9]]
            hz = os.sysconf("SC_CLK_TCK")
            idle = ticks[3] + ticks[4]
            return CpuTimes((sum(ticks) - idle) / hz, idle / hz)
    raise ValueError("no aggregate cpu line in /proc/stat")


def mean_mhz(cpuinfo: str | None = None) -> float:
    """The CPUs' mean clock as /proc/cpuinfo reports it now (0.0 where it does not say)."""
    if cpuinfo is None:
        with open("/proc/cpuinfo") as f:
            cpuinfo = f.read()
    mhz = [float(line.split(":", 1)[1]) for line in cpuinfo.splitlines() if line.startswith("cpu MHz")]
    return sum(mhz) / len(mhz) if mhz else 0.0
