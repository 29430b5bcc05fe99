"""libvirt domain XML from a declarative model, built with ElementTree (never pasted strings).

A variant of the libvirt kind (LibvirtVariant) is made a DomainSpec by `domain_spec`, pure, and the
spec a domain's XML by `domain_xml`: golden files cover every variant (tests/test_domain_xml.py).

The study's guest: virtio-blk with cache=none and io=native, virtio-net, vCPUs and memory as
given; "tuned" adds the host's CPU model (host-passthrough), a topology matching the host and
vCPUs pinned one to one, by position (topology.py). The kernel and initramfs are booted directly (no boot loader).
Emulated devices instead of paravirtual ones: an e1000 or rtl8139 NIC, disks on SATA (the q35
chipset's AHCI controller) or IDE (which only the older i440fx chipset, machine "pc", has).
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .guest_devices import missing_drivers
from .topology import HostTopology

METADATA_NS = "urn:x-bench:domain:1"  # an identifier, not an address
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"


class LibvirtVariant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    accel: Literal["kvm", "tcg"] = "kvm"   # tcg: binary translation, asked for by name
    tuned: bool = False                    # host-passthrough CPU, the host's topology, vCPUs pinned by position
    disk_format: Literal["raw", "qcow2"] = "raw"
    vcpus: int | None = None               # default: the host's CPU count
    memory_mib: int = 2048
    data_disk_gib: int = 2                 # fio's disk: on disk_bus, cache=none, io=native
    # user: QEMU user-mode net, guest ports forwarded to 127.0.0.1; bridge: the NIC on a tap
    # on a Linux bridge inside a network namespace of the run's own, vhost-net (virtio) under KVM
    network: Literal["user", "bridge"] = "user"
    # The guest's devices: paravirtual virtio (the study's) or emulated hardware. The root and
    # the data disk (fio's) are both on disk_bus: the guest's whole I/O path is the variant's.
    nic_model: Literal["virtio", "e1000", "rtl8139"] = "virtio"
    disk_bus: Literal["virtio", "sata", "ide"] = "virtio"
    # The image's Debian kernel flavour the guest boots: cloud (slim, paravirtual drivers only)
    # or generic (the same version with every driver, e.g. e1000 and AHCI).
    kernel: Literal["cloud", "generic"] = "cloud"
    # A kernel of the user's own instead (with its initramfs and the firmware it needs): a PVM
    # host (kvm_pvm) boots only a PVM guest kernel, which Debian does not ship. It must drive
    # virtio itself (built in, or modules in guest_initrd): the image has modules for its own only.
    guest_kernel: str | None = None
    guest_initrd: str | None = None
    firmware: str | None = None            # -bios, e.g. /usr/share/qemu/qboot.rom


@dataclasses.dataclass(frozen=True)
class Disk:
    path: str
    target: str                      # vda, vdb (virtio); sda, sdb (sata, ide)
    format: Literal["raw", "qcow2"] = "raw"
    bus: Literal["virtio", "sata", "ide"] = "virtio"
    cache: str = "none"              # the study: no host page cache between guest and device
    io: str = "native"               # the study: Linux AIO


@dataclasses.dataclass(frozen=True)
class DomainSpec:
    name: str
    run_id: str
    environment: str
    accel: Literal["kvm", "tcg"]
    vcpus: int
    memory_mib: int
    kernel: str
    initrd: str
    cmdline: str
    disks: tuple[Disk, ...]
    console_log: str
    # default: libvirt's default model (qemu64), the study's untuned guest; host-passthrough:
    # the tuned one; maximum: everything TCG can emulate (qemu64 lacks SSE3, and OpenBLAS's
    # kernels then die of SIGILL under TCG, which enforces CPUID where KVM does not).
    cpu_mode: Literal["default", "host-passthrough", "maximum"] = "default"
    topology: tuple[int, int, int] | None = None   # sockets, cores, threads
    pinning: tuple[int, ...] | None = None         # host CPU of each vCPU
    forwarded_ports: tuple[int, ...] = ()          # user-mode net: forward_address:P -> guest:P
    forward_address: str = "127.0.0.1"             # the host's publish_address
    nic_model: Literal["virtio", "e1000", "rtl8139"] = "virtio"
    # q35 (PCIe, AHCI built in) unless a disk is on IDE, which only i440fx ("pc") has
    machine: Literal["q35", "pc"] = "q35"
    # bridge: the NIC on a tap the harness made (libvirt opens it, never creates, moves or
    # deletes it: managed='no'); vhost-net moves its packets in the host kernel (KVM only).
    network: Literal["user", "bridge"] = "user"
    tap: str = ""
    vhost: bool = False
    numa_nodes: int = 1         # the host's: >1 interleaves the guest's memory over them (the study's)
    firmware: str = ""          # -bios ROM (qboot for a PVM guest kernel); "" = QEMU's SeaBIOS


# libvirt's NIC model name -> QEMU's device, for the user-mode NIC given to QEMU directly
QEMU_NIC_DEVICE = {"virtio": "virtio-net-pci", "e1000": "e1000", "rtl8139": "rtl8139"}
# the machine's root PCI bus, where the user-mode NIC is plugged
ROOT_BUS = {"q35": "pcie.0", "pc": "pci.0"}


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def domain_xml(spec: DomainSpec) -> str:
    ET.register_namespace("qemu", QEMU_NS)
    ET.register_namespace("bench", METADATA_NS)
    # libvirt's name for TCG is domain type "qemu".
    dom = ET.Element("domain", {"type": "kvm" if spec.accel == "kvm" else "qemu"})
    _sub(dom, "name", spec.name)
    meta = _sub(dom, "metadata")
    ET.SubElement(meta, f"{{{METADATA_NS}}}run", {"id": spec.run_id, "environment": spec.environment})
    _sub(dom, "memory", str(spec.memory_mib), unit="MiB")
    _sub(dom, "vcpu", str(spec.vcpus), placement="static")
    if spec.pinning:
        tune = _sub(dom, "cputune")
        for vcpu, cpu in enumerate(spec.pinning):
            _sub(tune, "vcpupin", vcpu=str(vcpu), cpuset=str(cpu))

    if spec.numa_nodes > 1:
        tune = _sub(dom, "numatune")
        _sub(tune, "memory", mode="interleave", nodeset=f"0-{spec.numa_nodes - 1}")

    os_ = _sub(dom, "os")
    _sub(os_, "type", "hvm", arch="x86_64", machine=spec.machine)
    if spec.firmware:
        _sub(os_, "loader", spec.firmware, type="rom", readonly="yes")
    _sub(os_, "kernel", spec.kernel)
    _sub(os_, "initrd", spec.initrd)
    _sub(os_, "cmdline", spec.cmdline)
    features = _sub(dom, "features")
    _sub(features, "acpi")

    if spec.cpu_mode != "default" or spec.topology:
        cpu = _sub(dom, "cpu", mode=spec.cpu_mode) if spec.cpu_mode != "default" else _sub(dom, "cpu")
        if spec.topology:
            sockets, cores, threads = spec.topology
            _sub(cpu, "topology", sockets=str(sockets), dies="1", cores=str(cores), threads=str(threads))

    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "destroy")
    _sub(dom, "on_crash", "destroy")

    devices = _sub(dom, "devices")
    for disk in spec.disks:
        d = _sub(devices, "disk", type="file", device="disk")
        _sub(d, "driver", name="qemu", type=disk.format, cache=disk.cache, io=disk.io)
        _sub(d, "source", file=disk.path)
        _sub(d, "target", dev=disk.target, bus=disk.bus)
    serial = _sub(devices, "serial", type="file")
    _sub(serial, "source", path=spec.console_log)
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="file")
    _sub(console, "source", path=spec.console_log)
    _sub(console, "target", type="serial", port="0")
    channel = _sub(devices, "channel", type="unix")
    _sub(channel, "target", type="virtio", name="org.qemu.guest_agent.0")
    _sub(devices, "memballoon", model="none")  # no balloon driver reclaiming memory mid-run

    if spec.network == "bridge":
        nic = _sub(devices, "interface", type="ethernet")
        _sub(nic, "target", dev=spec.tap, managed="no")
        _sub(nic, "model", type=spec.nic_model)
        if spec.nic_model == "virtio":  # back ends (vhost-net or QEMU's own) are virtio's alone
            _sub(nic, "driver", name="vhost" if spec.vhost else "qemu")
        ET.indent(dom)
        return ET.tostring(dom, encoding="unicode") + "\n"

    # User-mode networking with ports forwarded to one host address only (loopback, or the
    # address facing the run's client host): libvirt 9.0's
    # <interface type='user'> cannot forward ports without passt, so the netdev is given to
    # QEMU as structured arguments, the NIC at a PCI slot libvirt leaves free.
    fwd = "".join(f",hostfwd={proto}:{spec.forward_address}:{p}-:{p}"
                  for p in spec.forwarded_ports for proto in ("tcp", "udp"))
    cmd = ET.SubElement(dom, f"{{{QEMU_NS}}}commandline")
    for value in ("-netdev", f"user,id=benchnet0{fwd}",
                  "-device", f"{QEMU_NIC_DEVICE[spec.nic_model]},netdev=benchnet0,bus={ROOT_BUS[spec.machine]},addr=0x10"):
        ET.SubElement(cmd, f"{{{QEMU_NS}}}arg", {"value": value})

    ET.indent(dom)
    return ET.tostring(dom, encoding="unicode") + "\n"


# -- a variant's guest ---------------------------------------------------------------------------

def cpu_mode(variant: LibvirtVariant, accel: str) -> str:
    if accel == "tcg":
        return "maximum"
    return "host-passthrough" if variant.tuned else "default"


def uses_vhost(variant: LibvirtVariant, accel: str) -> bool:
    """vhost-net (the host kernel moves the NIC's packets) needs KVM's ioeventfd and irqfd:
    under TCG, QEMU's own virtio-net back end does the work. An emulated NIC is always QEMU's."""
    return variant.network == "bridge" and accel == "kvm" and variant.nic_model == "virtio"


def machine_type(variant: LibvirtVariant) -> str:
    """q35, whose chipset has an AHCI (SATA) controller and no IDE; IDE needs i440fx ("pc")."""
    return "pc" if variant.disk_bus == "ide" else "q35"


def driver_support(variant: LibvirtVariant) -> tuple[bool, str]:
    """Can the image's kernel of the variant's flavour drive its NIC and disk bus? Reads the
    kernel's build configuration from the image (made by `bench image build`); (True, "") when
    the image is not built yet: provisioning builds it and asks again."""
    from .. import image

    if variant.nic_model == "virtio" and variant.disk_bus == "virtio":
        return True, ""
    recipe = image.recipe()
    if not recipe.rootfs.exists():
        return True, ""
    missing = missing_drivers(image.vm_kernel_config(recipe, variant.kernel), variant.nic_model, variant.disk_bus)
    if not missing:
        return True, ""
    hint = "; `kernel: generic` has them" if variant.kernel == "cloud" else ""
    return False, f"the image's {variant.kernel} kernel has {', '.join(missing)}{hint}"


def domain_spec(name: str, run_id: str, environment: str, variant: LibvirtVariant, accel: str,
                topology: HostTopology, kernel: str, initrd: str, root: str, data: str,
                console_log: str, ports: tuple[int, ...], tap: str = "", guest_cidr: str = "",
                forward_address: str = "127.0.0.1", numa_nodes: int = 1) -> DomainSpec:
    """The guest of a variant: pure, so that golden XML tests cover every variant."""
    host_cpus = len(topology.positions)
    vcpus = variant.vcpus or host_cpus
    tuned = variant.tuned and accel == "kvm"  # pinning and passthrough mean nothing to TCG
    # virtio-blk disks are vda, vdb in the order given; SATA and IDE disks are sda, sdb in the
    # order the controller's ports are probed, so the root file system is found by its label.
    root_device = "/dev/vda" if variant.disk_bus == "virtio" else "LABEL=benchroot"
    prefix = "vd" if variant.disk_bus == "virtio" else "sd"
    cmdline = f"root={root_device} rw console=ttyS0 init=/usr/local/sbin/bench-init quiet"
    if variant.network == "bridge":
        cmdline += f" bench.ip={guest_cidr}"  # no DHCP on the bridge: bench-init sets it
    return DomainSpec(
        name=name, run_id=run_id, environment=environment, accel=accel,
        vcpus=vcpus, memory_mib=variant.memory_mib, kernel=kernel, initrd=initrd,
        cmdline=cmdline,
        disks=(Disk(root, f"{prefix}a", variant.disk_format, bus=variant.disk_bus),
               Disk(data, f"{prefix}b", variant.disk_format, bus=variant.disk_bus)),
        console_log=console_log,
        cpu_mode=cpu_mode(variant, accel),
        # The host's own topology when the guest has all its CPUs, as the study's tuned guest,
        # each vCPU pinned to the host CPU in its (socket, core, thread) position.
        topology=(topology.shape if vcpus == host_cpus else (1, vcpus, 1)) if tuned else None,
        pinning=topology.pinning(vcpus) if tuned else None,
        forwarded_ports=ports if variant.network == "user" else (), forward_address=forward_address,
        network=variant.network, tap=tap, vhost=uses_vhost(variant, accel),
        nic_model=variant.nic_model, machine=machine_type(variant), firmware=variant.firmware or "",
        numa_nodes=numa_nodes)
