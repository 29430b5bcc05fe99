"""libvirt domain XML from a declarative model, built with ElementTree (never pasted strings).

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

METADATA_NS = "urn:x-bench:domain:1"  # an identifier, not an address
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"


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
