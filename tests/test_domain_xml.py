"""Golden domain XML for every libvirt variant in workloads/environments.yaml.

Regenerate after an intended change with:  BENCH_REGOLD=1 pytest tests/test_domain_xml.py
and read the diff: it is the guest the study's comparison depends on.
"""

from __future__ import annotations

import dataclasses
import os
import xml.etree.ElementTree as ET

import pytest

from bench import config
from bench.environments.libvirt import LibvirtVariant, domain_spec
from bench.environments.domain import domain_xml
from bench.environments.topology import HostTopology, read_topology

from conftest import DATA

GOLDEN = DATA / "domain"
CATALOGUE = config.load()
VARIANTS = sorted(n for n, e in CATALOGUE.environments.items() if e.kind == "libvirt")
# The image's kernel of each flavour, as image.vm_kernel() names them (fixed, for the files).
KERNELS = {"cloud": ("/cache/vmlinuz", "/cache/initrd.img"),
           "generic": ("/cache/vmlinuz-generic", "/cache/initrd.img-generic")}
# A fixed two-socket, 4-cores-per-socket host, so the files do not depend on this machine.
TOPOLOGY = HostTopology.uniform(2, 4, 1)


def render(name: str, accel: str) -> str:
    variant = LibvirtVariant(**CATALOGUE.environments[name].variant)
    spec = domain_spec(f"bench-run1-{name}", "run1", name, variant, accel, TOPOLOGY,
                       *KERNELS[variant.kernel], f"/images/root.{variant.disk_format}",
                       f"/images/data.{variant.disk_format}", "/images/console.log", (40001, 40002),
                       tap="btap0123456789", guest_cidr="10.213.0.2/24")
    return domain_xml(spec)


CASES = [(n, "kvm" if CATALOGUE.environments[n].variant.get("accel", "kvm") == "kvm" else "tcg") for n in VARIANTS]
# A kvm variant that fell back to emulation (--allow-tcg) must really be a TCG guest.
CASES.append(("kvm-tuned", "tcg"))
# A bridged guest under TCG: the same tap, without vhost-net (it needs KVM).
CASES.append(("kvm-bridge", "tcg"))


@pytest.mark.parametrize("name,accel", CASES, ids=[f"{n}-{a}" for n, a in CASES])
def test_golden_domain_xml(name, accel):
    golden = GOLDEN / f"{name}-{accel}.xml"
    xml = render(name, accel)
    if os.environ.get("BENCH_REGOLD"):
        golden.write_text(xml)
    assert xml == golden.read_text()


def test_what_each_variant_means():
    def parse(name, accel):
        return ET.fromstring(render(name, accel))

    untuned = parse("kvm", "kvm")
    assert untuned.get("type") == "kvm" and untuned.find("cpu") is None and untuned.find("cputune") is None
    tuned = parse("kvm-tuned", "kvm")
    assert tuned.find("cpu").get("mode") == "host-passthrough"
    assert tuned.find("cpu/topology").attrib == {"sockets": "2", "dies": "1", "cores": "4", "threads": "1"}
    assert [(p.get("vcpu"), p.get("cpuset")) for p in tuned.findall("cputune/vcpupin")] == [
        (str(i), str(i)) for i in range(8)]
    emulated = parse("kvm-tuned", "tcg")
    assert emulated.get("type") == "qemu" and emulated.find("cputune") is None
    assert emulated.find("cpu").get("mode") == "maximum"
    # both disks: the study's MySQL guest kept its data on qcow2
    assert [d.get("type") for d in parse("kvm-qcow2", "kvm").findall("devices/disk/driver")] == ["qcow2", "qcow2"]
    for disk in untuned.findall("devices/disk"):
        assert disk.find("driver").attrib == {"name": "qemu", "type": "raw", "cache": "none", "io": "native"}
        assert disk.find("target").get("bus") == "virtio"
    args = [a.get("value") for a in untuned.iter("{http://libvirt.org/schemas/domain/qemu/1.0}arg")]
    # guest ports reachable on the host's loopback only, under the same numbers
    assert "hostfwd=tcp:127.0.0.1:40001-:40001" in args[1] and "0.0.0.0" not in args[1]


def test_bridge_variant_is_a_tap_with_vhost_only_under_kvm():
    qemu_arg = "{http://libvirt.org/schemas/domain/qemu/1.0}arg"
    for accel, driver in (("kvm", "vhost"), ("tcg", "qemu")):
        dom = ET.fromstring(render("kvm-bridge", accel))
        (nic,) = dom.findall("devices/interface")
        assert nic.get("type") == "ethernet"
        # a tap the harness made and libvirt must not touch (it moves into the run's namespace)
        assert nic.find("target").attrib == {"dev": "btap0123456789", "managed": "no"}
        assert nic.find("model").get("type") == "virtio" and nic.find("driver").get("name") == driver
        assert list(dom.iter(qemu_arg)) == []  # no user-mode netdev beside it
        assert dom.find("os/cmdline").text.endswith(" bench.ip=10.213.0.2/24")
    user = ET.fromstring(render("kvm", "kvm"))
    assert user.find("devices/interface") is None and "bench.ip" not in user.find("os/cmdline").text


def test_device_variants_put_both_disks_on_their_bus_and_the_nic_model_on_the_net():
    qemu_arg = "{http://libvirt.org/schemas/domain/qemu/1.0}arg"
    for name, bus, machine in (("kvm-sata", "sata", "q35"), ("kvm-ide", "ide", "pc")):
        dom = ET.fromstring(render(name, "kvm"))
        # the root and fio's data disk both: the guest's whole I/O path is the variant's
        assert [(d.find("target").get("dev"), d.find("target").get("bus")) for d in dom.findall("devices/disk")] == [
            ("sda", bus), ("sdb", bus)]
        assert dom.find("os/type").get("machine") == machine  # q35 has no IDE controller
        assert "root=LABEL=benchroot " in dom.find("os/cmdline").text  # sda/sdb order is the probe's
        nic = [a.get("value") for a in dom.iter(qemu_arg)][3]
        assert nic.startswith("virtio-net-pci,") and f"bus={'pcie.0' if machine == 'q35' else 'pci.0'}" in nic
    e1000 = ET.fromstring(render("kvm-e1000", "tcg"))
    args = [a.get("value") for a in e1000.iter(qemu_arg)]
    # an emulated NIC on user-mode net still forwards the guest's ports to the host's loopback
    assert args[3].startswith("e1000,netdev=benchnet0,") and "hostfwd=tcp:127.0.0.1:40001-:40001" in args[1]
    assert all(d.find("target").get("bus") == "virtio" for d in e1000.findall("devices/disk"))
    assert e1000.find("os/kernel").text == "/cache/vmlinuz-generic"


def test_an_emulated_nic_on_the_bridge_has_no_vhost():
    from bench.environments.libvirt import uses_vhost

    variant = LibvirtVariant(network="bridge", nic_model="e1000", kernel="generic")
    assert not uses_vhost(variant, "kvm")  # vhost-net is a virtio-net back end only
    spec = domain_spec("bench-run1-x", "run1", "x", variant, "kvm", TOPOLOGY, *KERNELS["generic"],
                       "/images/root.raw", "/images/data.raw", "/images/console.log", (), tap="btap0",
                       guest_cidr="10.213.0.2/24")
    (nic,) = ET.fromstring(domain_xml(spec)).findall("devices/interface")
    assert nic.find("model").get("type") == "e1000" and nic.find("driver") is None
    rtl = domain_spec("bench-run1-y", "run1", "y", LibvirtVariant(nic_model="rtl8139", kernel="generic"), "tcg",
                      TOPOLOGY, *KERNELS["generic"], "/images/root.raw", "/images/data.raw",
                      "/images/console.log", (40001,))
    assert "rtl8139,netdev=benchnet0,bus=pcie.0,addr=0x10" in domain_xml(rtl)


def kernel_config(release: str) -> dict[str, str]:
    lines = (DATA / "guest_devices" / f"config-{release}.excerpt").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.startswith("CONFIG_"))


def test_which_kernel_flavour_drives_which_device():
    from bench.environments.guest_devices import missing_drivers

    cloud, generic = kernel_config("6.1.0-50-cloud-amd64"), kernel_config("6.1.0-50-amd64")
    assert missing_drivers(cloud, "virtio", "virtio") == [] and missing_drivers(cloud, "virtio", "ide") == []
    assert missing_drivers(cloud, "e1000", "virtio") == [
        "no NIC driver for Intel 82540EM e1000 (emulated) (CONFIG_E1000 not set)"]
    assert [m.split(" (")[0] for m in missing_drivers(cloud, "rtl8139", "sata")] == [
        "no NIC driver for Realtek RTL8139", "no disk bus driver for SATA on the q35 chipset's ICH9 AHCI controller"]
    for nic in ("virtio", "e1000", "rtl8139"):
        for bus in ("virtio", "sata", "ide"):
            assert missing_drivers(generic, nic, bus) == [], (nic, bus)


@pytest.mark.parametrize("recording,nic_model,disk_bus,found", [
    ("e1000-q35", "e1000", "virtio", ("enp0s16", "e1000", "vda", "virtio_blk", "vdb", "virtio_blk")),
    ("sata-q35", "virtio", "sata", ("enp0s16", "virtio_net", "sdb", "ahci", "sda", "ahci")),
    ("ide-pc", "virtio", "ide", ("ens16", "virtio_net", "sda", "ata_piix", "sdb", "ata_piix")),
])
def test_what_a_guest_said_about_its_devices(recording, nic_model, disk_bus, found):
    from bench.environments.guest_devices import mismatches, parse_probe

    devices = parse_probe((DATA / "guest_devices" / f"{recording}.txt").read_text(), "/bench/work")
    assert dataclasses.astuple(devices) == found
    assert mismatches(devices, nic_model, disk_bus) == []
    # the same guest taken for another variant is refused, naming what drives what
    other_nic = "virtio" if nic_model == "e1000" else "e1000"
    assert mismatches(devices, other_nic, disk_bus) == [
        f"its NIC {found[0]} is driven by {found[1]}, not {'virtio_net' if other_nic == 'virtio' else 'e1000'}"]
    no_data_disk = parse_probe("\n".join(l for l in (DATA / "guest_devices" / f"{recording}.txt").read_text().splitlines()
                                         if "/bench/work" not in l), "/bench/work")
    assert any("data disk none" in m for m in mismatches(no_data_disk, nic_model, disk_bus))


def test_tuned_pinning_follows_the_hosts_positions_not_its_numbers():
    """The study's host numbered thread siblings N and N+16: vCPU 1 (core 0's second thread in
    the guest) belongs on host CPU 16, not on CPU 1, which is another physical core."""
    study_host = HostTopology.uniform(2, 8, 2, siblings_apart=True)
    assert study_host.shape == (2, 8, 2)
    pins = study_host.pinning(32)
    assert pins[:4] == (0, 16, 1, 17) and pins[16:18] == (8, 24) and sorted(pins) == list(range(32))
    # a 4-vCPU guest: four physical cores, no two vCPUs on sibling threads
    assert study_host.pinning(4) == (0, 1, 2, 3) and study_host.pinning(33) is None
    spec = domain_spec("bench-run1-t", "run1", "t", LibvirtVariant(tuned=True), "kvm", study_host,
                       *KERNELS["cloud"], "/r", "/d", "/c", ())
    pins_xml = ET.fromstring(domain_xml(spec)).findall("cputune/vcpupin")
    assert [p.get("cpuset") for p in pins_xml[:2]] == ["0", "16"]
    assert spec.topology == (2, 8, 2)


def test_topology_is_read_from_sysfs(tmp_path):
    """A sysfs tree as a two-socket host with siblings apart writes it, and this host's own."""
    for cpu in range(8):
        topo = tmp_path / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        socket, core = (cpu % 4) // 2, cpu % 2
        (topo / "physical_package_id").write_text(f"{socket}\n")
        (topo / "core_id").write_text(f"{core * 8}\n")          # core ids need not be dense
        (topo / "thread_siblings_list").write_text(f"{cpu % 4},{cpu % 4 + 4}\n")
    read = read_topology(tmp_path)
    assert read == HostTopology.uniform(2, 2, 2, siblings_apart=True)
    here = read_topology()
    assert len(here.positions) == os.cpu_count()
