"""Why KVM cannot run a guest on this host, in the host's own terms.

The probe (probe_kvm, below) proves whether a guest runs; obstacle() says why one does not, from what
the host shows: no /dev/kvm, no vmx/svm flag (a VM without nested virtualization), a /dev/kvm
the user cannot open, or a /dev/kvm backed by PVM. PVM (the kvm_pvm module, pagetable-based
nested virtualization) runs only guest kernels built for it (CONFIG_PVM_GUEST), which no Debian
kernel is; a user with such a kernel gives it to a variant as `guest_kernel`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from .. import settings

if TYPE_CHECKING:
    from ..checks import Check
    from .domain import LibvirtVariant

SYS_MODULE = Path("/sys/module")


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def is_pvm_host(modules: Path = SYS_MODULE) -> bool:
    return (modules / "kvm_pvm").exists()


def obstacle(guest_config: Mapping[str, str] | None = None, *, modules: Path = SYS_MODULE,
             dev_kvm: str = "/dev/kvm", flags: set[str] | None = None) -> str:
    """What stands between this host and a KVM guest, or "" if nothing visible does.
    guest_config: the build configuration of the kernel the guest would boot, if known."""
    flags = cpu_flags() if flags is None else flags
    hardware = bool(flags & {"vmx", "svm"})
    if not os.path.exists(dev_kvm):
        if not hardware and "hypervisor" in flags:
            return ("no /dev/kvm: this host is itself a VM whose CPU shows no vmx/svm "
                    "(its hypervisor does not offer nested virtualization)")
        if not hardware:
            return "no /dev/kvm: the CPU shows no vmx/svm (virtualization off in the firmware?)"
        return "no /dev/kvm: load the module (`modprobe kvm_intel` or `kvm_amd`)"
    if not os.access(dev_kvm, os.R_OK | os.W_OK):
        return f"{dev_kvm} is not readable and writable by this user (add it to group kvm)"
    if is_pvm_host(modules):
        if guest_config is not None and guest_config.get("CONFIG_PVM_GUEST") in ("y", "m"):
            return ""
        which = ("the image's Debian kernel is not one (Debian ships none)" if guest_config is not None
                 else "the guest's kernel did not boot under it")
        return ("/dev/kvm is PVM (module kvm_pvm: pagetable-based nested virtualization), which boots "
                f"only a PVM guest kernel (CONFIG_PVM_GUEST); {which}. Give one to the variant as "
                "`guest_kernel` (with `guest_initrd`, and `firmware`, e.g. /usr/share/qemu/qboot.rom)")
    if not hardware and "hypervisor" in flags:
        return "nested KVM in a VM whose CPU shows no vmx/svm: guests hang or fail there"
    return ""


# -- the probe ----------------------------------------------------------------------------------

_PROBE: dict[str, tuple[bool, str]] = {}


def probe_cache() -> Path:
    """Where the probe's answer is kept for the rest of the host's boot."""
    return settings.current().cache_dir / "kvm-probe.json"


def probe_kvm(kernel: Path, firmware: str | None = None,
              kernel_config: dict[str, str] | None = None) -> tuple[bool, str]:
    """Can KVM run a guest here? Boot the guest's kernel under KVM with no disk and watch for it
    to reach its "cannot mount root" panic: proof that the virtual CPU ran the kernel.
    Nested KVM passes the /dev/kvm test and then hangs or fails with "KVM internal error"; both
    are caught, and kvm_host.obstacle says why (PVM, no vmx/svm ...). Cached per boot of the
    host, kernel and firmware. kernel_config: the kernel's build options, if known."""
    import psutil

    key = f"{psutil.boot_time():.0f}:{kernel}:{firmware or ''}"
    cache = probe_cache()
    if key in _PROBE:
        return _PROBE[key]
    try:
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            _PROBE[key] = (saved["usable"], saved["reason"])
            return _PROBE[key]
    except (OSError, ValueError):
        pass
    why = obstacle(kernel_config)
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        result = (False, why or "/dev/kvm is missing or not accessible")
    else:
        argv = ["qemu-system-x86_64", "-accel", "kvm", "-kernel", str(kernel), "-append",
                "console=ttyS0 panic=-1", "-no-reboot", "-nodefaults", "-display", "none",
                "-serial", "stdio", "-m", "256", *(["-bios", firmware] if firmware else [])]
        from .host import _child_setup

        try:
            # The probe's QEMU dies with bench (SIGKILL, SIGTERM before a run handles it): a
            # killed `bench doctor` or `bench run` leaves no emulator behind, unseen by cleanup.
            r = subprocess.run(argv, capture_output=True, text=True, timeout=30, preexec_fn=_child_setup())
            output = r.stdout + r.stderr
        except subprocess.TimeoutExpired as e:
            output = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        if "Unable to mount root" in output or "Kernel panic" in output:
            result = (True, "a KVM guest ran the kernel")
        elif "KVM internal error" in output or "emulation failure" in output:
            result = (False, why or "KVM internal error (emulation failure): nested KVM does not work here")
        else:
            result = (False, why or "a KVM guest printed nothing in 30 s (nested KVM hangs here)")
    _PROBE[key] = result
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"key": key, "usable": result[0], "reason": result[1]}))
    except OSError:
        pass
    return result


def probe_variant(variant: LibvirtVariant) -> tuple[bool, str]:
    """The probe with the kernel and firmware the variant's guest would boot: the image's
    cloud kernel, or the variant's own `guest_kernel`."""
    from .. import image

    if variant.guest_kernel:
        return probe_kvm(Path(variant.guest_kernel), variant.firmware)
    recipe = image.recipe()
    return probe_kvm(image.vm_kernel(recipe)[0], variant.firmware, image.vm_kernel_config(recipe))


def kvm_check() -> "Check":
    """Boots a kernel under KVM (the run's own probe, cached per boot): /dev/kvm alone proves
    nothing, nested KVM has it and then hangs."""
    from .. import image
    from ..checks import OK, WARN, Check
    from .domain import LibvirtVariant

    recipe = image.recipe()
    if not recipe.rootfs.exists():
        # What the host shows already (PVM, no vmx/svm) needs no boot: the image's kernel is Debian's.
        seen = obstacle({})
        return Check("environments", "kvm", WARN,
                     f"KVM NOT usable: {seen}" if seen else "not probed: the probe boots the workload image's kernel",
                     "bench image build")
    usable, why = probe_variant(LibvirtVariant())
    if usable:
        return Check("environments", "kvm", OK, f"KVM usable: {why}")
    return Check("environments", "kvm", WARN, f"KVM NOT usable: {why}",
                 "kvm environments run only with --allow-tcg, emulated (not virtualization costs); "
                 "measure VMs on a host with working KVM")
