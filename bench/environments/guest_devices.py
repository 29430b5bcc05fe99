"""A guest's device models (NIC, disk bus), the kernel drivers each needs, and what the guest
itself says drives them.

Paravirtual devices (virtio-net, virtio-blk) know they are virtual; emulated ones (an Intel
e1000 or Realtek 8139 NIC, disks on an AHCI SATA or a PIIX IDE controller) imitate real
hardware, at the cost of trapping every register access. A variant names the model; whether
the guest can drive it depends on its kernel's build configuration (Debian's cloud flavour has
no e1000, rtl8139 or AHCI driver), checked before anything is made; and what really drove
the device is read from inside the booted guest, from sysfs, and recorded.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class DeviceModel:
    what: str                          # in words, for messages and metadata
    configs: tuple[str, ...]           # kernel options of which at least one must be y or m
    drivers: tuple[str, ...]           # the guest driver names any of which is the right one
    needs: tuple[str, ...] = ()        # kernel options that must all be y or m besides


NIC_MODELS = {
    "virtio": DeviceModel("virtio-net (paravirtual)", ("CONFIG_VIRTIO_NET",), ("virtio_net",)),
    "e1000": DeviceModel("Intel 82540EM e1000 (emulated)", ("CONFIG_E1000",), ("e1000",)),
    # QEMU's RTL8139 says it is a C+ chip: 8139cp takes it, 8139too leaves it to 8139cp when
    # both are built; either one drives it.
    "rtl8139": DeviceModel("Realtek RTL8139 (emulated)", ("CONFIG_8139CP", "CONFIG_8139TOO"), ("8139cp", "8139too")),
}

DISK_BUSES = {
    "virtio": DeviceModel("virtio-blk (paravirtual)", ("CONFIG_VIRTIO_BLK",), ("virtio_blk",)),
    "sata": DeviceModel("SATA on the q35 chipset's ICH9 AHCI controller (emulated)", ("CONFIG_SATA_AHCI",),
                        ("ahci",), needs=("CONFIG_ATA", "CONFIG_BLK_DEV_SD")),
    "ide": DeviceModel("IDE on the i440fx chipset's PIIX3 controller (emulated)", ("CONFIG_ATA_PIIX",),
                       ("ata_piix",), needs=("CONFIG_ATA", "CONFIG_BLK_DEV_SD")),
}


def missing_drivers(kernel_config: dict[str, str], nic_model: str, disk_bus: str) -> list[str]:
    """What the kernel lacks to drive the variant's NIC and disks, in words; [] when nothing."""
    missing = []
    for kind, model in (("NIC", NIC_MODELS[nic_model]), ("disk bus", DISK_BUSES[disk_bus])):
        built = lambda option: kernel_config.get(option) in ("y", "m")  # noqa: E731
        if not any(built(o) for o in model.configs):
            missing.append(f"no {kind} driver for {model.what} ({' / '.join(model.configs)} not set)")
        for option in model.needs:
            if not built(option):
                missing.append(f"{option} not set (needed for {model.what})")
    return missing


# Run inside the guest: for its first network interface and the disks mounted on / and on the
# data folder ($0), the sysfs device path, its PCI vendor:device ids, and the driver that
# drives it: the nearest device up the sysfs tree with a driver, passing over the SCSI disk
# class driver (sd) to the controller's (ahci, ata_piix). One line each:
#   nic eth0 /sys/devices/pci0000:00/0000:00:10.0 0x8086:0x100e e1000
#   disk / sda /sys/devices/pci0000:00/0000:00:1f.2/ata1/... 0x8086:0x2922 ahci
PROBE_SCRIPT = r'''
driver() {
    p=$(readlink -f "$1")
    while [ -n "$p" ] && [ "$p" != /sys/devices ]; do
        if [ -e "$p/driver" ]; then
            d=$(readlink "$p/driver"); d=${d##*/}
            [ "$d" != sd ] && { echo "$d"; return; }
        fi
        p=${p%/*}
    done
    echo none
}
pci_id() {
    p=$(readlink -f "$1")
    while [ -n "$p" ] && [ "$p" != /sys/devices ]; do
        [ -e "$p/vendor" ] && [ -e "$p/device" ] && [ -e "$p/class" ] && { echo "$(cat "$p/vendor"):$(cat "$p/device")"; return; }
        p=${p%/*}
    done
    echo none
}
for n in /sys/class/net/*; do
    name=${n##*/}
    [ "$name" = lo ] && continue
    echo "nic $name $(readlink -f "$n/device") $(pci_id "$n/device") $(driver "$n/device")"
    break
done
for m in / "$0"; do
    dev=
    while read -r source mount rest; do [ "$mount" = "$m" ] && dev=${source#/dev/}; done < /proc/mounts
    [ -n "$dev" ] || { echo "disk $m none none none none"; continue; }
    echo "disk $m $dev $(readlink -f "/sys/class/block/$dev/device") $(pci_id "/sys/class/block/$dev/device") $(driver "/sys/class/block/$dev/device")"
done
'''


@dataclasses.dataclass(frozen=True)
class GuestDevices:
    """What the guest says: its NIC's driver, and the drivers of its root and data disks."""

    nic: str
    nic_driver: str
    root_disk: str
    root_disk_driver: str
    data_disk: str
    data_disk_driver: str


def parse_probe(text: str, data_mount: str) -> GuestDevices:
    nic = nic_driver = "none"
    disks: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 5 and fields[0] == "nic":
            nic, nic_driver = fields[1], fields[4]
        elif len(fields) == 6 and fields[0] == "disk":
            disks[fields[1]] = (fields[2], fields[5])
    root = disks.get("/", ("none", "none"))
    data = disks.get(data_mount, ("none", "none"))
    return GuestDevices(nic, nic_driver, root[0], root[1], data[0], data[1])


def mismatches(found: GuestDevices, nic_model: str, disk_bus: str) -> list[str]:
    """Where the guest's own drivers differ from what the variant says it runs on."""
    wrong = []
    nic, bus = NIC_MODELS[nic_model], DISK_BUSES[disk_bus]
    if found.nic_driver not in nic.drivers:
        wrong.append(f"its NIC {found.nic} is driven by {found.nic_driver}, not {'/'.join(nic.drivers)}")
    for role, dev, drv in (("root", found.root_disk, found.root_disk_driver),
                           ("data", found.data_disk, found.data_disk_driver)):
        if drv not in bus.drivers:
            wrong.append(f"its {role} disk {dev} is driven by {drv}, not {'/'.join(bus.drivers)}")
    return wrong
