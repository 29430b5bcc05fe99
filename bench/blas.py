"""Which kernel OpenBLAS picks on this CPU, and whether it is a generic fallback.

OpenBLAS chooses its kernels by the CPU it recognises. A CPU newer than the library (Debian 12's
OpenBLAS 0.3.21 does not know Intel's family 6 model 207) gets the generic Prescott kernel: SSE3
only, a fraction of the CPU's peak, in every environment alike. HPL's GFLOPS are then the
library's, not the machine's; the ratio to native still holds, the absolute number does not.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re

# Kernels of CPUs without AVX: on a CPU that has AVX2, picking one of them means OpenBLAS did
# not recognise the CPU and fell back.
GENERIC = ("Prescott", "Katmai", "Coppermine", "Northwood", "Banias", "Core2", "Penryn", "Dunnington",
           "Atom", "Nehalem", "Opteron", "Barcelona", "Bobcat")
LIBRARIES = ("libopenblas.so.0", "libblas.so.3")


def core(library: str | None = None) -> str:
    """The kernel OpenBLAS picks here ("" where no OpenBLAS is loaded)."""
    for name in ([library] if library else LIBRARIES):
        try:
            lib = ctypes.CDLL(name)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib.openblas_get_corename().decode()
        except (OSError, AttributeError):
            continue
    return ""


def cpu(cpuinfo: str | None = None) -> dict[str, str]:
    """The first CPU's family, model, model name and whether it has AVX2, from /proc/cpuinfo."""
    if cpuinfo is None:
        with open("/proc/cpuinfo") as f:
            cpuinfo = f.read()
    first = cpuinfo.split("\n\n")[0]
    fields = dict((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in first.splitlines()) if _)
    return {"family": fields.get("cpu family", ""), "model": fields.get("model", ""),
            "name": fields.get("model name", ""), "avx2": "yes" if re.search(r"\bavx2\b", fields.get("flags", "")) else "no"}


def fallback(core_name: str, has_avx2: bool) -> bool:
    """Is this kernel a generic fallback on this CPU (one without AVX on a CPU with AVX2)?"""
    return has_avx2 and core_name in GENERIC


def note(core_name: str, info: dict[str, str]) -> str:
    """What a reader should know when the kernel is a fallback ("" when it is not)."""
    if not fallback(core_name, info.get("avx2") == "yes"):
        return ""
    return (f"OpenBLAS runs its generic {core_name} kernel on this CPU ({info.get('name') or 'unknown'}, family "
            f"{info.get('family')} model {info.get('model')}, which this OpenBLAS does not recognise): HPL runs at a "
            "fraction of the CPU's peak in every environment alike; its ratios to native hold, its GFLOPS are the "
            "library's, not the machine's")
