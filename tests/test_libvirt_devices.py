"""Emulated devices (e1000 NIC, SATA and IDE disks) in real guests under TCG (KVM does not run here).

Two `bench run`s boot a kvm-e1000, a kvm-sata and a kvm-ide guest once each (--allow-tcg): the
e1000 guest runs a tiny netperf TCP_RR cell through its NIC, the SATA and IDE guests a tiny fio
cell on their data disk (each guest's parity probe then hashes its own tool's files only: fio's
85 MB take a TCG guest 8 s). The tests read what the guests themselves said about their devices
(sysfs, kept in the run folder), the samples and the metadata of those runs.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import bench
from bench import image
from bench.environments import guest_devices, libvirt as lv

from conftest import ROOT, bench_cli

pytestmark = pytest.mark.integration
RUN = f"t{os.getpid()}-vmdev"  # machine-wide names (domains, disk folders): unique per session
# Each variant with the cell that uses its emulated device.
RUNS = {"nic": (("kvm-e1000",), "netperf-rr-tiny"), "disk": (("kvm-sata", "kvm-ide"), "fio-tiny")}

# Cells small enough for TCG: a 32 MiB file read for 2 s, a 2 s TCP_RR.
TINY_CATALOGUE = """
fio-tiny:
  tool: fio
  description: random read, 4 KiB blocks, queue depth 16, a 32 MiB file (TCG-sized)
  warmups: 0
  params: {rw: randread, bs: 4k, iodepth: 16, numjobs: 1, size: 32M, runtime: 2}
netperf-rr-tiny:
  tool: netperf
  description: TCP request/response, 100/200 bytes, 2 s (TCG-sized)
  warmups: 0
  params: {test: TCP_RR, request_size: 100, response_size: 200, length: 2}
"""


def domains_of(run_id: str) -> list[str]:
    from bench import cleanup

    return [l.name for l in lv.LibvirtEnvironment.leftovers(run_id)]


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    dest = tmp_path_factory.mktemp("config") / "workloads"
    shutil.copytree(ROOT / "workloads", dest)
    (dest / "catalogue" / "tiny.yaml").write_text(TINY_CATALOGUE)
    for name, (_, workload) in RUNS.items():
        (dest / "suites" / f"vmdev-{name}.yaml").write_text(
            f"description: emulated devices under TCG\nrepetitions: 1\nworkloads: [{workload}]\n")
    return dest


@pytest.fixture(scope="module")
def device_runs(vm_image, tiny_config, tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """The two runs: each guest boots once for the whole module. environment -> (its run
    folder, its run's stdout)."""
    out = tmp_path_factory.mktemp("results")
    found = {}
    for name, (envs, _) in RUNS.items():
        run_id = f"{RUN}-{name}"
        r = bench_cli("--config-dir", str(tiny_config), "run", "--suite", f"vmdev-{name}", "--env", ",".join(envs),
                      "--allow-tcg", "--out", str(out), "--run-id", run_id,
                      "--scratch", str(tmp_path_factory.mktemp("scratch")), timeout=1500)
        assert r.returncode == 0, r.stderr[-3000:]
        assert domains_of(run_id) == []  # its guests and their disks are gone
        found.update({env: (out / run_id, r.stdout) for env in envs})
    return found


def probe(device_runs, env: str) -> str:
    return (device_runs[env][0] / "raw" / env / "provision" / "guest-devices.txt").read_text()


def test_the_e1000_guest_has_an_intel_e1000_nic_driven_by_e1000(device_runs):
    words = probe(device_runs, "kvm-e1000")
    (nic,) = [line.split() for line in words.splitlines() if line.startswith("nic ")]
    # nic <if> <sysfs path> <PCI vendor:device> <driver>: Intel 82540EM is 8086:100e
    assert nic[3] == "0x8086:0x100e" and nic[4] == "e1000", words
    disks = [line.split() for line in words.splitlines() if line.startswith("disk ")]
    assert [(d[1], d[2], d[5]) for d in disks] == [("/", "vda", "virtio_blk"), ("/bench/work", "vdb", "virtio_blk")]


@pytest.mark.parametrize("env,pci,driver", [
    ("kvm-sata", "0x8086:0x2922", "ahci"),      # the q35 chipset's ICH9 AHCI controller
    ("kvm-ide", "0x8086:0x7010", "ata_piix"),   # the i440fx chipset's PIIX3 IDE controller
])
def test_the_sata_and_ide_guests_have_both_disks_on_their_controller(device_runs, env, pci, driver):
    words = probe(device_runs, env)
    disks = {d[1]: d for d in (line.split() for line in words.splitlines() if line.startswith("disk "))}
    for mount in ("/", "/bench/work"):
        _, _, dev, path, found_pci, found_driver = disks[mount]
        # a SCSI disk behind one of the controller's ATA ports
        assert dev.startswith("sd") and "/ata" in path and (found_pci, found_driver) == (pci, driver), words
    assert disks["/"][2] != disks["/bench/work"][2]
    (nic,) = [line.split() for line in words.splitlines() if line.startswith("nic ")]
    assert nic[4] == "virtio_net"


def test_metadata_records_the_drivers_the_guest_reported(device_runs):
    expected = {"kvm-e1000": ("e1000", "e1000", "virtio_blk", "virtio", "q35"),
                "kvm-sata": ("virtio", "virtio_net", "ahci", "sata", "q35"),
                "kvm-ide": ("virtio", "virtio_net", "ata_piix", "ide", "pc")}
    for env, (model, nic_driver, disk_driver, bus, machine) in expected.items():
        recorded = json.loads((device_runs[env][0] / "run.json").read_text())["environments"][env]
        meta = recorded["metadata"]
        assert meta["machine"] == machine
        assert (meta["nic_model"], meta["guest_nic_driver"]) == (model, nic_driver)
        assert (meta["disk_bus"], meta["guest_disk_driver"], meta["guest_root_disk_driver"]) == (
            bus, disk_driver, disk_driver)
        assert meta["kernel_flavour"] == "generic" and meta["guest_kernel"].endswith("-amd64")
        assert not meta["guest_kernel"].endswith("-cloud-amd64")
        assert meta["accel"] == "tcg" and meta["emulated"] is True  # never passes for KVM
        assert recorded["variant_as_run"]["accel"] == "tcg"


def test_samples_carry_the_device_variant_they_ran_on(device_runs):
    for env, nic, bus, workload, metric in (
            # the e1000 guest's server is reached through QEMU's user-mode net on 127.0.0.1
            ("kvm-e1000", "e1000", "virtio", "netperf-rr-tiny", "latency_mean"),
            ("kvm-sata", "virtio", "sata", "fio-tiny", "read_iops"),
            ("kvm-ide", "virtio", "ide", "fio-tiny", "read_iops")):
        run, stdout = device_runs[env]
        df = bench.load(run)
        rows = df[df.environment == env]
        assert set(rows.env_nic_model) == {nic} and set(rows.env_disk_bus) == {bus}
        assert set(rows.env_kernel) == {"generic"} and set(rows.env_accel) == {"tcg"}
        measured = rows[(rows.workload == workload) & (rows.metric == metric)]
        assert len(measured) == 1 and measured.value.iloc[0] > 0, env
        print(f"TCG (emulated, not KVM) {env}: {workload} {metric} {measured.value.iloc[0]:.0f} "
              f"{measured.unit.iloc[0]}")
        assert "(TCG)" in stdout


def test_a_variant_whose_kernel_lacks_the_driver_is_not_available(vm_image, tiny_config):
    """The cloud kernel has no e1000 and no AHCI driver: `bench list` says so and a run refuses
    before making anything; its PIIX IDE driver is there."""
    config = image.vm_kernel_config(vm_image, "cloud")
    assert guest_devices.missing_drivers(config, "virtio", "ide") == []
    path = tiny_config.parent / "cloud-e1000"
    shutil.copytree(tiny_config, path)
    with open(path / "environments.yaml", "a") as f:
        f.write("\ncloud-e1000:\n  kind: libvirt\n  accel: tcg\n  nic_model: e1000\n"
                "\ncloud-sata:\n  kind: libvirt\n  accel: tcg\n  disk_bus: sata\n")
    listing = json.loads(bench_cli("--config-dir", str(path), "list", "environments", "--json", "--allow-tcg").stdout)
    envs = {e["name"]: e for e in listing["environments"]}
    e1000, sata = envs["cloud-e1000"], envs["cloud-sata"]
    assert not e1000["available"] and "CONFIG_E1000 not set" in e1000["reason"] and "kernel: generic" in e1000["reason"]
    assert not sata["available"] and "CONFIG_SATA_AHCI not set" in sata["reason"]
    r = bench_cli("--config-dir", str(path), "run", "--suite", "vmdev-nic", "--env", "cloud-e1000", "--allow-tcg",
                  "--out", str(path / "results"))
    assert r.returncode == 2 and "CONFIG_E1000 not set" in r.stderr
    assert lv.LibvirtEnvironment.availability(lv.LibvirtEnvironment.Variant.model_validate({"accel": "tcg", "nic_model": "e1000", "kernel": "generic"}),
                                              allow_tcg=True)[0]
