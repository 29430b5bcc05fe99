"""Why KVM cannot run a guest on this host, in the host's own terms.

The probe (libvirt.probe_kvm) proves whether a guest runs; this says why one does not, from what
the host shows: no /dev/kvm, no vmx/svm flag (a VM without nested virtualization), a /dev/kvm
the user cannot open, or a /dev/kvm backed by PVM. PVM (the kvm_pvm module, pagetable-based
nested virtualization) runs only guest kernels built for it (CONFIG_PVM_GUEST), which no Debian
kernel is; a user with such a kernel gives it to a variant as `guest_kernel`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

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
