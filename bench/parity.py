"""Parity: did every environment run the tools under the same conditions as native?

Once per environment per run, before anything is measured, a probe runs through the very path
the tools take (Environment.exec, so under the declared execution context) and reports what a
tool sees there: its environment variables, umask, limits, scheduling, CPUs, cgroup limits, CPU
flags, kernel, clock source, THP, the sha256 of each tool binary and of every shared library it
links, and the kernel OpenBLAS picks. Each environment's context is compared with native's (the
host's). A difference is *intended* when the environment's kind or variant explains it (a guest
has its own kernel; `--cpus` sets a CFS quota) and *unintended* otherwise. An unintended
difference in what decides a result (variables, binaries, libraries, the BLAS kernel, limits,
umask, nice, affinity) stops the run before measuring, unless --allow-mismatch.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from .environments import Environment

# Run with the environment's python3 (in the image for the webapp's front; Debian's on a host).
# Stdlib only; prints one JSON object. argv: the programs whose binaries and libraries to hash.
PROBE = r'''
import ctypes, hashlib, json, os, re, resource, subprocess, sys

def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""

hashed = {}

def sha256(path):  # once per file: the programs share most of their libraries (libc, libssl...)
    if path not in hashed:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        hashed[path] = h.hexdigest()
    return hashed[path]

def which(program):
    if "/" in program:
        return program if os.path.isfile(program) else ""
    for folder in os.environ.get("PATH", "").split(":"):
        path = os.path.join(folder, program)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return ""

def fs_type(path):
    best, kind = "", ""
    for line in read("/proc/self/mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        point = left.split()[4]
        if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, kind = point, right.split()[0]
    return kind

def cgroup(controller, files):
    rel = ""
    for line in read("/proc/self/cgroup").splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(",") or (names == "" and not rel):
            rel = path
    roots = ["/sys/fs/cgroup" + rel, "/sys/fs/cgroup"]
    if not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # v1: one tree per controller
        roots = [d + sub for d in ("/sys/fs/cgroup/" + controller, "/sys/fs/cgroup/cpu,cpuacct")
                 for sub in (rel, "")]
    for root in roots:
        values = [read(os.path.join(root, f)) for f in files]
        if all(values):
            return " ".join(values)
    return ""

mask = os.umask(0); os.umask(mask)
limits = {}
for name in ("nofile", "memlock", "stack", "nproc", "core"):
    soft, hard = resource.getrlimit(getattr(resource, "RLIMIT_" + name.upper()))
    limits[name] = ":".join("unlimited" if v == resource.RLIM_INFINITY else str(v) for v in (soft, hard))
flags = ""
model = ""
for line in read("/proc/cpuinfo").splitlines():
    key, _, value = line.partition(":")
    if key.strip() == "flags" and not flags:
        flags = " ".join(sorted(value.split()))
    if key.strip() == "model name" and not model:
        model = value.strip()
thp = re.search(r"\[(\w+)\]", read("/sys/kernel/mm/transparent_hugepage/enabled"))
cpus = sorted(os.sched_getaffinity(0))
context = {
    "env": dict(os.environ), "cwd": os.getcwd(), "cwd_fs": fs_type(os.getcwd()),
    "umask": "%04o" % mask, "limits": limits, "nice": os.getpriority(os.PRIO_PROCESS, 0),
    "affinity": ",".join(map(str, cpus)), "online_cpus": read("/sys/devices/system/cpu/online"),
    "cgroup_cpu_quota": cgroup("cpu", ["cpu.max"]) or cgroup("cpu", ["cpu.cfs_quota_us", "cpu.cfs_period_us"]),
    "cgroup_memory_limit": cgroup("memory", ["memory.max"]) or cgroup("memory", ["memory.limit_in_bytes"]),
    "cpu_model": model, "cpu_flags": flags, "kernel_release": os.uname().release,
    "kernel_cmdline": read("/proc/cmdline"),
    "clocksource": read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
    "thp": thp.group(1) if thp else "", "binaries": {}, "libraries": {}, "blas_core": "",
}
blas = ""
for program in sys.argv[1:]:
    path = which(program)
    if not path:
        context["binaries"][program] = "missing"
        continue
    context["binaries"][program] = sha256(os.path.realpath(path))
    out = subprocess.run(["ldd", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode()
    for line in out.splitlines():
        m = re.match(r"\s*(\S+)\s*(?:=>\s*(\S+))?", line)
        lib = m.group(2) or m.group(1)
        if not lib.startswith("/"):
            continue  # the vDSO
        real = os.path.realpath(lib)
        name = os.path.basename(m.group(1))  # the soname, the same wherever the file lies
        context["libraries"][name] = sha256(real)
        if not blas and ("openblas" in real or name.startswith("libblas")):
            blas = real
if blas:  # the kernel OpenBLAS picks here, for this context (OPENBLAS_CORETYPE would decide it)
    try:
        lib = ctypes.CDLL(blas)
        lib.openblas_get_corename.restype = ctypes.c_char_p
        context["blas_core"] = lib.openblas_get_corename().decode()
    except (OSError, AttributeError) as e:
        context["blas_core"] = "unknown (%s)" % e
print(json.dumps(context))
'''

# Keys whose difference changes what a tool computes or how: an unintended one stops the run.
DECISIVE = ("env.", "binary.", "library.", "blas_core", "limit.", "umask", "nice", "affinity")
WORKDIR = "<scratch folder>"  # HOME and PWD are the scratch folder, whose path differs by kind


def measure(env: Environment, programs: list[str], timeout: float = 120) -> dict[str, Any]:
    """The context as a tool sees it in env, flat: {key: text}. Raises RuntimeError if the
    probe cannot run there (no python3)."""
    r = env.exec(["python3", "-c", PROBE, *programs], timeout=timeout)
    if not r.ok:
        raise RuntimeError(f"the execution-context probe failed in {env.name}: "
                           f"{(r.stderr.strip().splitlines() or ['exit status ' + str(r.returncode)])[-1]}")
    return flatten(json.loads(r.stdout), env.workdir)


def flatten(raw: dict[str, Any], workdir: str) -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in raw.items():
        if key == "env":
            for name, text in value.items():
                flat[f"env.{name}"] = WORKDIR if workdir and text == workdir else text
        elif key in ("limits", "binaries", "libraries"):
            prefix = {"limits": "limit", "binaries": "binary", "libraries": "library"}[key]
            for name, text in value.items():
                flat[f"{prefix}.{name}"] = str(text)
        elif key == "cwd":
            flat[key] = WORKDIR if workdir and value == workdir else value
        else:
            flat[key] = str(value)
    return flat


@dataclasses.dataclass(frozen=True)
class Difference:
    key: str
    native: str | None     # None: the key is absent there
    value: str | None
    intended: str          # the variant or kind that explains it; "" when nothing does
    decisive: bool

    @property
    def blocking(self) -> bool:
        return self.decisive and not self.intended

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "blocking": self.blocking}

    def one_line(self, environment: str) -> str:
        return (f"{environment}: {self.key} is {_show(self.value)} there but {_show(self.native)} on the host "
                f"(native)")


def _show(value: str | None) -> str:
    if value is None:
        return "unset"
    return repr(value if len(value) <= 60 else value[:57] + "...")


def compare(native: dict[str, str], other: dict[str, str], kind: Any, variant: Any) -> list[Difference]:
    """Every key whose value differs from native's, classified: intended when the environment's
    kind (its class) explains it by its variant as it ran (`intended_difference`)."""
    cpu_differs = native.get("cpu_flags") != other.get("cpu_flags")
    found = []
    for key in sorted(set(native) | set(other)):
        a, b = native.get(key), other.get(key)
        # Native is probed for every workload's programs, an environment for its own only.
        if key.startswith(("binary.", "library.")) and b is None or key == "blas_core" and not b:
            continue
        if a != b:
            found.append(Difference(key, a, b, kind.intended_difference(key, variant, cpu_differs),
                                    key.startswith(DECISIVE)))
    return found


def programs_of(tools: list[Any], side: str = "programs") -> list[str]:
    """The programs whose identity the probe checks, once each, in order: the workloads' own
    (side "programs": where they run) or their clients' ("client_programs")."""
    return list(dict.fromkeys(p for tool in tools for p in getattr(tool, side)))


def fix(d: Difference) -> str:
    """How to remove an unintended difference, for the one-line error."""
    if d.key.startswith("env."):
        name = d.key[4:]
        return (f"something there sets {name} (its image, its daemon): remove it, or give it to every "
                f"environment alike with --pass-env {name}")
    if d.key.startswith(("binary.", "library.")):
        return ("make both hold the same files: update the host's packages (scripts/setup.sh) or rebuild "
                "the image (bench image build --force), and remove local copies under /usr/local")
    if d.key == "blas_core":
        return "the CPUs the two see differ; run where both see the same CPU"
    if d.key.startswith("limit."):
        return "raise the hard limit where it is lower (the daemon's or the shell's ulimit)"
    return "make the two alike"
