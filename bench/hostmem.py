"""Host memory as the density suite reads it: the proportional set size (PSS) of processes, the
process trees an instance adds, and the host's MemAvailable.

PSS charges each shared page to its users in equal parts, so the PSS of N instances' processes,
summed, is what they hold together: RSS would count a shared library N times. What PSS misses:
the kernel's memory for them (page tables, the container's cgroup, sockets), the page cache
their files filled, and memory merged by KSM after the reading. MemAvailable's drop, read
beside it, sees the host as a whole (every other process's change too), so the two are shown
together and named.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import psutil


def pss_kib(pid: int) -> int:
    """A process's PSS in KiB, from /proc/PID/smaps_rollup; 0 for one that has ended."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def pss_total_kib(pids: Iterable[int]) -> int:
    return sum(pss_kib(pid) for pid in set(pids))


def mem_available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/meminfo has no MemAvailable")


def mem_total_kib() -> int:
    return psutil.virtual_memory().total // 1024


def tree(pid: int) -> list[int]:
    """pid and every process below it (an instance's processes, from its top one)."""
    try:
        top = psutil.Process(pid)
        return [pid, *(p.pid for p in top.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def ancestor_named(pid: int, names: tuple[str, ...]) -> int | None:
    """The nearest ancestor of pid whose process name starts with one of names (a container's
    containerd shim, Podman's conmon), or None."""
    try:
        p = psutil.Process(pid).parent()
        while p is not None and p.pid > 1:
            if p.name().startswith(names):
                return p.pid
            p = p.parent()
    except psutil.NoSuchProcess:
        pass
    return None


def ksm_state() -> str:
    """Whether the kernel's same-page merging runs, and what it merged ("off" where absent)."""
    base = Path("/sys/kernel/mm/ksm")
    try:
        run = (base / "run").read_text().strip()
        shared = int((base / "pages_sharing").read_text())
    except (OSError, ValueError):
        return "unavailable"
    return f"{'on' if run == '1' else 'off'} ({shared} pages sharing)"
