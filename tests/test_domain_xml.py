"""Golden domain XML for every libvirt variant in workloads/environments.yaml.

Regenerate after an intended change with:  BENCH_REGOLD=1 pytest tests/test_domain_xml.py
and read the diff: it is the guest the study's comparison depends on.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest

from bench import config
from bench.environments.libvirt import LibvirtVariant, domain_spec
from bench.environments.domain import domain_xml

from conftest import DATA

GOLDEN = DATA / "domain"
CATALOGUE = config.load()
VARIANTS = sorted(n for n, e in CATALOGUE.environments.items() if e.kind == "libvirt")
# A fixed two-socket, 4-cores-per-socket host, so the files do not depend on this machine.
TOPOLOGY = (2, 4, 1)


def render(name: str, accel: str) -> str:
    variant = LibvirtVariant(**CATALOGUE.environments[name].variant)
    spec = domain_spec(f"bench-run1-{name}", "run1", name, variant, accel, TOPOLOGY,
                       "/cache/vmlinuz", "/cache/initrd.img", f"/images/root.{variant.disk_format}",
                       "/images/data.raw", "/images/console.log", (40001, 40002),
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
    assert parse("kvm-qcow2", "kvm").find("devices/disk/driver").get("type") == "qcow2"
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
