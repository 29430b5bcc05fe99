"""What the host was when a run ran: a flat dict of snake_case keys with scalar values.

Identity (CPU model, core count, memory, kernel) decides what is comparable between runs;
volatile readings (load, governor, turbo) are recorded so a reader can tell a noisy run.
A reading this machine does not offer is "unavailable", never left out silently.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import psutil

UNAVAILABLE = "unavailable"


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def _os_release() -> str:
    text = _read("/etc/os-release") or ""
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.platform()


def _cpu_model() -> str:
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or UNAVAILABLE


def cpu_governor() -> str:
    return _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") or UNAVAILABLE


def cpu_turbo() -> str:
    """'on', 'off' or 'unavailable' (virtual machines usually expose neither knob)."""
    no_turbo = _read("/sys/devices/system/cpu/intel_pstate/no_turbo")
    if no_turbo is not None:
        return "off" if no_turbo == "1" else "on"
    boost = _read("/sys/devices/system/cpu/cpufreq/boost")
    if boost is not None:
        return "on" if boost == "1" else "off"
    return UNAVAILABLE


def _version(package: str) -> str:
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        return UNAVAILABLE


def host_metadata() -> dict[str, Any]:
    freq = psutil.cpu_freq()
    numa = len(list(Path("/sys/devices/system/node").glob("node[0-9]*")))
    aslr = _read("/proc/sys/kernel/randomize_va_space")
    return {
        "hostname": socket.gethostname(),
        "os": _os_release(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "cpu_model_name": _cpu_model(),
        "cpu_count": psutil.cpu_count(logical=True) or 0,
        "cpu_physical_cores": psutil.cpu_count(logical=False) or 0,
        "cpu_freq_max_mhz": round(freq.max, 1) if freq and freq.max else UNAVAILABLE,
        "cpu_governor": cpu_governor(),
        "cpu_turbo": cpu_turbo(),
        "numa_nodes": numa or 1,
        "memory_total_bytes": psutil.virtual_memory().total,
        "swap_total_bytes": psutil.swap_memory().total,
        "aslr": aslr if aslr is not None else UNAVAILABLE,
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "boot_time": dt.datetime.fromtimestamp(psutil.boot_time(), dt.timezone.utc).isoformat(),
        "python_version": platform.python_version(),
        "bench_version": _version("bench"),
        "psutil_version": _version("psutil"),
        "pandas_version": _version("pandas"),
        "pydantic_version": _version("pydantic"),
    }


def version_mismatches(tool_versions: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Tools whose version differs between environments: {tool: {environment: version}}.

    The point of the comparison is identical binaries everywhere; a difference is flagged in
    the run's metadata so that nobody reads a version change as a virtualization cost.
    """
    by_tool: dict[str, dict[str, str]] = {}
    for env, versions in tool_versions.items():
        for tool, version in versions.items():
            by_tool.setdefault(tool, {})[env] = version
    return {t: v for t, v in by_tool.items() if len(set(v.values())) > 1}
