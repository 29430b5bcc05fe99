"""The execution context: what every tool, server and client runs under, in every environment.

A tool's result depends on more than its binary: OpenBLAS picks its kernels by the variable
OPENBLAS_CORETYPE, glibc's malloc by MALLOC_*, MPI by OMPI_*, a loader by LD_PRELOAD. A host
whose tools inherited the caller's shell would run another program than a container whose
tools get the image's environment. So no tool inherits anything: every command an environment
runs goes through `wrap()`, which starts it with exactly the declared variables, umask and
limits, the same in every kind (the host, a container, a guest, a client host). What the tool
then really saw is measured by parity.py's probe, through this same path.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

# /usr/local first, as Debian's root PATH: a tool shadowed there is what a user would run, and
# the parity probe's binary hash shows it.
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Limits every tool gets. dash's `ulimit` sets soft and hard limits together (stack: soft only,
# so a tool may grow it as it could anywhere). Chosen so that an unprivileged container (no
# CAP_SYS_RESOURCE, hard nofile inherited from dockerd) can still set them: lowering a limit
# is always allowed. Where one cannot be set, the probe shows the value that held.
LIMITS = {"nofile": 8192, "memlock": 8192, "stack": 8192}  # files; KiB; KiB
UMASK = "0022"

# The shell in front of every command: umask and limits, then the tool itself in its place
# (exec), so that the pid a server records is the tool's and a timeout signals the tool.
PRELUDE = (f"umask {UMASK}; ulimit -n {LIMITS['nofile']} 2>/dev/null; "
           f"ulimit -l {LIMITS['memlock']} 2>/dev/null; ulimit -S -s {LIMITS['stack']} 2>/dev/null; "
           'exec "$@"')

# Families of variables known to change the code path of the tools bench runs; bench never
# passes them on (doctor names them when the caller has them set).
CODE_PATH_VARIABLES = ("OPENBLAS_", "GOTO_", "OMP_", "GOMP_", "KMP_", "MKL_", "OMPI_", "PMIX_",
                       "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_BIND_NOW", "MALLOC_", "GLIBC_TUNABLES")


def code_path_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The caller's variables of those families."""
    return {k: v for k, v in sorted(environ.items()) if k.startswith(CODE_PATH_VARIABLES)}


@dataclasses.dataclass(frozen=True)
class ExecutionContext:
    """The declared context. `passed` holds the caller's variables the user named with
    --pass-env (their values as bench started, recorded in run.json): the same in every
    environment, as everything else here."""

    passed: tuple[tuple[str, str], ...] = ()
    # numactl --interleave=all in front of the tool: the study's CPU and memory tests on its
    # two-socket host, native and Docker alike (a guest's memory is interleaved by libvirt's
    # numatune instead). Set per cell by the runner (memory_policy), never on a one-node host.
    interleave: bool = False

    @classmethod
    def passing(cls, names: list[str], environ: Mapping[str, str] | None = None) -> "ExecutionContext":
        environ = os.environ if environ is None else environ
        return cls(tuple((n, environ[n]) for n in sorted(set(names)) if n in environ))

    def variables(self, home: str) -> dict[str, str]:
        """Exactly the environment a tool gets. HOME is the environment's scratch folder: no
        tool reads the caller's dotfiles (~/.my.cnf) on the host while a container has none."""
        return {"PATH": PATH, "HOME": home or "/", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC",
                **dict(self.passed)}

    @property
    def path(self) -> str:
        """The PATH tools are looked up on: the declared one, or the caller's if passed."""
        return dict(self.passed).get("PATH", PATH)

    def wrap(self, argv: list[str], home: str) -> list[str]:
        """argv as it must run: `env -i` with the declared variables, then the prelude. Absolute
        paths, because nothing of the caller's PATH may decide which env or sh runs."""
        assignments = [f"{k}={v}" for k, v in self.variables(home).items()]
        tool = ["numactl", "--interleave=all", *argv] if self.interleave else argv
        return ["/usr/bin/env", "-i", *assignments, "/bin/sh", "-c", PRELUDE, "bench-context", *tool]

    def as_dict(self) -> dict[str, object]:
        return {"variables": self.variables("<the environment's scratch folder>"), "umask": UMASK,
                "limits": dict(LIMITS)}


NODES = "/sys/devices/system/node"


def numa_nodes(root: str = NODES) -> int:
    """The host's NUMA nodes (1 where sysfs has none)."""
    try:
        return max(sum(1 for n in os.listdir(root) if n.startswith("node") and n[4:].isdigit()), 1)
    except OSError:
        return 1


def memory_policy(interleaves: bool, shares_host_memory: bool, nodes: int) -> bool:
    """Whether a tool runs under numactl --interleave=all: a CPU or memory test (the workload
    says), in an environment sharing the host's memory (its kind says; a guest's memory is
    QEMU's, interleaved by numatune), on a host of several nodes."""
    return interleaves and shares_host_memory and nodes > 1


def memory_policy_record(tools: list[str], nodes: int) -> dict[str, object]:
    """What run.json says of it."""
    if nodes <= 1:
        return {"numa_nodes": nodes, "interleaved": [], "why": "one NUMA node: nothing to interleave"}
    return {"numa_nodes": nodes, "interleaved": tools,
            "why": "as the study: numactl --interleave=all for CPU and memory tests on the host and in "
                   "containers; guests' memory interleaved by libvirt (numatune)"}
