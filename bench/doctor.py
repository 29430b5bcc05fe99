"""`bench doctor`: can this host run each kind of environment, and what here would spoil a
measurement?

Every check is one `Check` line: OK, WARN or FAIL, what was found, and how to fix it. FAIL is
kept for what the default environment (the bare host) cannot do without: its workload tools.
A missing dockerd or a KVM that cannot run a guest only takes some environments away, and
noise sources only make numbers less trustworthy: both are warnings.

The checks that read the kernel's knobs take the /sys and /proc roots as arguments, so that
tests can give them trees with values this machine cannot have (a `powersave` governor).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

from . import settings
from .checks import FAIL, OK, WARN, Check  # noqa: F401 -- Check and FAIL are doctor's vocabulary too
SYS, PROC = Path("/sys"), Path("/proc")
LOAD_PER_CORE = 0.5     # a 1-minute load above this per core is someone else's work on our CPUs
BUSY_PERCENT = 10.0     # a process above this share of one CPU is named as a competitor


# -- environments ----------------------------------------------------------------------------

def check_environments() -> list[Check]:
    """Every environment kind's own checks, in the kinds' order."""
    from .environments import KINDS

    checks: list[Check] = []
    for kind in KINDS.values():
        try:
            checks.extend(kind.doctor_checks())
        except Exception as e:  # noqa: BLE001 - one kind that cannot look must not hide the others
            checks.append(Check("environments", kind.kind, WARN,
                                f"could not check: {type(e).__name__}: {str(e).strip()[:200]}"))
    return checks


# -- the workload image ----------------------------------------------------------------------

def check_image() -> list[Check]:
    from . import image

    recipe = image.recipe()
    fix = "bench image build"
    checks = []
    if not recipe.rootfs.exists() and shutil.which("debootstrap") is None:
        checks.append(Check("image", "image builder", WARN, "debootstrap is missing: the image cannot be built",
                            "apt-get install debootstrap"))
    if recipe.rootfs.exists():
        checks.append(Check("image", "image rootfs", OK,
                            f"{recipe.rootfs} ({recipe.rootfs.stat().st_size / 2**20:.0f} MiB)"))
    else:
        checks.append(Check("image", "image rootfs", WARN, f"recipe {recipe.digest} not built ({recipe.rootfs})", fix))
    return checks


# -- the tools on the host -------------------------------------------------------------------

def check_tools() -> list[Check]:
    """Every workload's programs must be here for the host environment; client programs too,
    since clients of client/server workloads run on the host whatever the environment."""
    from .workloads import TOOLS

    checks = []
    for name, tool in sorted(TOOLS.items()):
        wanted = list(dict.fromkeys([*tool.programs, *tool.client_programs]))
        missing = [p for p in wanted if shutil.which(p) is None]
        if missing:
            checks.append(Check("tools", f"tool {name}", FAIL, f"missing on the host: {', '.join(missing)}",
                                f"apt-get install {' '.join(tool.packages)} (or scripts/setup.sh)"))
        else:
            checks.append(Check("tools", f"tool {name}", OK, " ".join(shutil.which(p) for p in wanted)))
    return checks


# -- noise -----------------------------------------------------------------------------------

def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _bracketed(text: str) -> str:
    """The selected value of a sysfs choice file: "always [madvise] never" -> "madvise"."""
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return text


def governors(sysfs: Path = SYS) -> dict[str, str]:
    """CPU name -> its cpufreq scaling governor (empty where the kernel exposes no cpufreq)."""
    found = {}
    for f in sorted((sysfs / "devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_governor")):
        value = _read(f)
        if value:
            found[f.parent.parent.name] = value
    return found


def check_governor(sysfs: Path = SYS) -> Check:
    found = governors(sysfs)
    if not found:
        return Check("noise", "cpu governor", WARN,
                     "not exposed (no cpufreq: a VM or container; the hypervisor sets the clock, unseen)",
                     "measure on bare metal to control CPU frequency")
    other = {cpu: g for cpu, g in found.items() if g != "performance"}
    if not other:
        return Check("noise", "cpu governor", OK, f"performance on all {len(found)} CPUs")
    kinds = ", ".join(sorted(set(other.values())))
    return Check("noise", "cpu governor", WARN, f"{kinds} on {len(other)} of {len(found)} CPUs: the clock "
                 "follows the load, so repetitions differ", "bench doctor --tune (sets performance; --reset undoes it)")


def check_turbo(sysfs: Path = SYS) -> Check:
    cpu = sysfs / "devices/system/cpu"
    no_turbo = _read(cpu / "intel_pstate/no_turbo")
    boost = _read(cpu / "cpufreq/boost")
    if no_turbo is not None:
        on, where = no_turbo == "0", "intel_pstate/no_turbo"
        fix = f"echo 1 > {cpu / 'intel_pstate/no_turbo'}"
    elif boost is not None:
        on, where = boost == "1", "cpufreq/boost"
        fix = f"echo 0 > {cpu / 'cpufreq/boost'}"
    else:
        return Check("noise", "turbo", WARN, "not exposed (no intel_pstate or cpufreq boost knob)",
                     "measure on bare metal to control turbo")
    if on:
        return Check("noise", "turbo", WARN, f"on ({where}): the clock depends on temperature and on "
                     "how many cores are busy", fix)
    return Check("noise", "turbo", OK, f"off ({where})")


def check_swap() -> Check:
    import psutil

    swap = psutil.swap_memory()
    if swap.total == 0:
        return Check("noise", "swap", OK, "no swap")
    if swap.used == 0:
        return Check("noise", "swap", OK, f"{swap.total / 2**20:.0f} MiB of swap, none in use")
    return Check("noise", "swap", WARN, f"{swap.used / 2**20:.0f} MiB of swap in use: memory is short",
                 "free memory (stop other work) or `swapoff -a`")


def busy_processes(interval: float = 0.5) -> list[tuple[str, int, float]]:
    """(name, pid, % of one CPU) of processes other than this one and its children, busiest first."""
    import time

    import psutil

    me = psutil.Process()
    ours = {me.pid, *(c.pid for c in me.children(recursive=True))}
    procs = [p for p in psutil.process_iter(["name"]) if p.pid not in ours]
    for p in procs:
        try:
            p.cpu_percent(None)  # the first call only starts the measuring interval
        except psutil.Error:
            pass
    time.sleep(interval)
    busy = []
    for p in procs:
        try:
            busy.append((p.info["name"], p.pid, p.cpu_percent(None)))
        except psutil.Error:
            pass
    return sorted((b for b in busy if b[2] >= BUSY_PERCENT), key=lambda b: -b[2])


def check_load() -> Check:
    cores = os.cpu_count() or 1
    load1 = os.getloadavg()[0]
    busy = busy_processes()
    top = ", ".join(f"{name} (pid {pid}) {pct:.0f}%" for name, pid, pct in busy[:3])
    detail = f"load average {load1:.2f} on {cores} CPUs" + (f"; busy: {top}" if top else "")
    if load1 > LOAD_PER_CORE * cores or busy:
        return Check("noise", "other load", WARN, detail, "wait for other work to finish, or stop it, before measuring")
    return Check("noise", "other load", OK, detail)


def check_caller_variables(environ: dict[str, str] | None = None) -> Check:
    """Variables of the caller's shell that change tools' code paths (OPENBLAS_CORETYPE picks
    OpenBLAS's kernels): bench never passes them on, so they cannot favour the host; named here
    so that nobody believes a tool of bench's ran with them."""
    from .environments.context import code_path_variables

    found = code_path_variables(os.environ if environ is None else environ)
    if not found:
        return Check("noise", "caller's variables", OK, "none that change a tool's code path")
    shown = ", ".join(f"{k}={v[:20]}" for k, v in found.items())
    return Check("noise", "caller's variables", WARN,
                 f"set in this shell: {shown}; bench does not pass them to any tool, in any environment",
                 "to measure with one, pass it to every environment alike: bench run --pass-env NAME")


def check_blas(core: str | None = None, cpuinfo: str | None = None) -> Check:
    """OpenBLAS's kernel on this CPU: a generic fallback makes HPL slow everywhere alike."""
    from . import blas

    name = blas.core() if core is None else core
    if not name:
        return Check("noise", "BLAS kernel", OK, "no OpenBLAS here")
    info = blas.cpu(cpuinfo)
    text = blas.note(name, info)
    if text:
        return Check("noise", "BLAS kernel", WARN, text,
                     "a newer OpenBLAS that knows this CPU, or OPENBLAS_CORETYPE=SkylakeX passed to every "
                     "environment alike (--pass-env)")
    return Check("noise", "BLAS kernel", OK, f"{name} on {info.get('name') or 'this CPU'}")


def check_hugepages(sysfs: Path = SYS) -> Check:
    text = _read(sysfs / "kernel/mm/transparent_hugepage/enabled")
    if text is None:
        return Check("noise", "transparent hugepages", OK, "not exposed (kernel without THP)")
    mode = _bracketed(text)
    if mode == "always":
        # khugepaged collapses pages in the background: a source of jitter, and a difference
        # between environments when a guest's kernel has another setting.
        return Check("noise", "transparent hugepages", WARN, "always: khugepaged works in the background",
                     f"echo madvise > {sysfs / 'kernel/mm/transparent_hugepage/enabled'}")
    return Check("noise", "transparent hugepages", OK, mode)


def virtualization(sysfs: Path = SYS, proc: Path = PROC) -> tuple[str, str]:
    """(hypervisor, container) this host runs under, "" for none."""
    def detect(flag: str) -> str:
        if shutil.which("systemd-detect-virt") is None:
            return ""
        r = subprocess.run(["systemd-detect-virt", flag], capture_output=True, text=True)
        out = r.stdout.strip()
        return "" if out in ("", "none") else out

    vm = detect("--vm") if sysfs == SYS else ""
    if not vm:
        product = _read(sysfs / "class/dmi/id/product_name") or ""
        cpuinfo = _read(proc / "cpuinfo") or ""
        flags = next((line for line in cpuinfo.splitlines() if line.startswith("flags")), "")
        if any(k in product for k in ("KVM", "VMware", "VirtualBox", "Virtual Machine", "HVM domU", "Standard PC")):
            vm = product
        elif " hypervisor" in flags:
            vm = "hypervisor flag in cpuinfo"
    container = detect("--container") if sysfs == SYS else ""
    if not container and sysfs == SYS:
        container = "docker" if Path("/.dockerenv").exists() else "podman" if Path("/run/.containerenv").exists() else ""
    return vm, container


def check_virtualization(sysfs: Path = SYS, proc: Path = PROC) -> Check:
    vm, container = virtualization(sysfs, proc)
    inside = " and ".join(x for x in (f"a {container} container" if container else "",
                                     f"a VM ({vm})" if vm else "") if x)
    if not inside:
        return Check("noise", "bare metal", OK, "no hypervisor or container detected")
    nested = "; its VMs are nested and its 'host' numbers include a hypervisor's costs" if vm else ""
    return Check("noise", "bare metal", WARN, f"this host runs inside {inside}{nested}",
                 "for the study's numbers, run on a bare-metal machine")


# -- all of them -----------------------------------------------------------------------------

def run_checks() -> list[Check]:
    checks: list[Check] = []
    for group, name, check in (("environments", "environments", check_environments), ("image", "image", check_image),
                               ("tools", "tools", check_tools), ("noise", "cpu governor", check_governor),
                               ("noise", "turbo", check_turbo), ("noise", "swap", check_swap),
                               ("noise", "other load", check_load), ("noise", "transparent hugepages", check_hugepages),
                               ("noise", "caller's variables", check_caller_variables),
                               ("noise", "BLAS kernel", check_blas),
                               ("noise", "bare metal", check_virtualization)):
        try:
            found = check()
        except Exception as e:  # noqa: BLE001 - one check that cannot look must not hide the others
            found = Check(group, name, WARN, f"could not check: {type(e).__name__}: {str(e).strip()[:200]}")
        checks.extend(found if isinstance(found, list) else [found])
    # A group's checks together (a kind gives both environment and image checks), groups in
    # the order above, each group's in the order found.
    groups = ("environments", "image", "tools", "noise")
    return sorted(checks, key=lambda c: groups.index(c.group) if c.group in groups else len(groups))


# What makes a machine's numbers less trustworthy, recorded in run.json at a run's start and
# shown on the report's first screen (the caller's variables are not among them: bench never
# passes them on, so they spoil nothing).
MACHINE_CHECKS = (check_governor, check_turbo, check_swap, check_load, check_hugepages, check_virtualization,
                  check_blas)


def machine_warnings() -> list[dict[str, str]]:
    """The noise checks that warn, as {name, detail, fix} for run.json."""
    found = []
    for check in MACHINE_CHECKS:
        try:
            c = check()
        except Exception as e:  # noqa: BLE001 - a check that cannot look is said, not raised
            c = Check("noise", check.__name__.removeprefix("check_"), WARN, f"could not check: {type(e).__name__}")
        if c.status != OK:
            found.append({"name": c.name, "detail": c.detail, "fix": c.fix})
    return found


def exit_status(checks: list[Check]) -> int:
    return 1 if any(c.status == FAIL for c in checks) else 0


def as_json(checks: list[Check]) -> str:
    return json.dumps({"status": exit_status(checks), "checks": [dataclasses.asdict(c) for c in checks]}, indent=2)


# -- --tune / --reset: the governor only, reversibly -------------------------------------------

def _tuning() -> Path:
    return settings.current().cache_dir / "tuning.json"


def tune(sysfs: Path = SYS, saved: Path | None = None) -> str:
    """Every CPU's governor to performance; the old ones are kept in `saved` for reset()."""
    saved = saved or _tuning()
    found = governors(sysfs)
    if not found:
        return "nothing to tune: this machine exposes no CPU frequency governor (cpufreq)"
    if not saved.exists():  # a second --tune must not overwrite the true old values with "performance"
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps({"governors": found}, indent=2))
    for cpu in found:
        (sysfs / "devices/system/cpu" / cpu / "cpufreq/scaling_governor").write_text("performance")
    return f"governor performance on {len(found)} CPUs (old values in {saved}; undo with --reset)"


def reset(sysfs: Path = SYS, saved: Path | None = None) -> str:
    saved = saved or _tuning()
    try:
        old = json.loads(saved.read_text())["governors"]
    except (OSError, ValueError, KeyError):
        return f"nothing to reset: no saved tuning in {saved}"
    for cpu, governor in old.items():
        (sysfs / "devices/system/cpu" / cpu / "cpufreq/scaling_governor").write_text(governor)
    saved.unlink()
    return f"governors restored on {len(old)} CPUs: {', '.join(sorted(set(old.values())))}"
