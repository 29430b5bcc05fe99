"""libvirt environments against the real libvirtd, with guests under TCG (KVM does not run here)."""

from __future__ import annotations

import json
import os

import pytest

import bench
from bench import config, image, settings
from bench.environments import kvm_host, libvirt as lv
from bench.environments.host import run_argv

from conftest import bench_cli, edit_catalogue, short_tools

pytestmark = pytest.mark.integration
QUICK_KVM = f"quick-kvm-{os.getpid()}"  # machine-wide names: unique per session


def domains_of(run_id: str) -> list[str]:
    from bench import cleanup

    return [l.name for l in lv.LibvirtEnvironment.leftovers(run_id)]


# The module's guest boots a kernel of the user's own (guest_kernel, guest_initrd and firmware,
# as for a PVM guest kernel where /dev/kvm is PVM's): here the image's generic kernel stands in
# for the user's, booted by qboot instead of SeaBIOS. The default kernel (the image's cloud
# one) is the quick suite's guest's, below.
QBOOT = "/usr/share/qemu/qboot.rom"


@pytest.fixture(scope="module")
def guest(vm_image, tmp_path_factory):
    """One TCG guest for the whole module: it boots once. The last test leaves it to `bench
    cleanup`, as a SIGKILLed run would; if that test did not run, it is torn down here."""
    kernel, initrd = image.vm_kernel(image.recipe(), "generic")
    env = lv.LibvirtEnvironment("tcg", {"accel": "tcg", "guest_kernel": str(kernel), "guest_initrd": str(initrd),
                                        "firmware": QBOOT}, f"t{os.getpid()}-vm")
    env.provision(str(tmp_path_factory.mktemp("scratch")), n_ports=2)
    yield env
    if domains_of(env.run_id):
        env.teardown()
    assert domains_of(env.run_id) == []


def test_guest_boots_and_says_it_is_emulated(guest):
    assert guest.accel == "tcg"
    assert [m.metric for m in guest.measurements] == ["boot_to_ready"]
    assert 0 < guest.measurements[0].value < lv.BOOT_TIMEOUT
    meta = guest.metadata()
    assert meta["accel"] == "tcg" and meta["emulated"] is True and meta["domain_type"] == "qemu"
    assert "bench-init: guest agent" in guest.artifacts()["console.log"]
    assert guest.effective_variant()["accel"] == "tcg"


def test_a_guest_kernel_of_the_users_own(guest):
    """The guest says it ran the kernel it was given, and the domain names the firmware."""
    kernel = image.vm_kernel(image.recipe(), "generic")[0]
    assert f"<kernel>{kernel}</kernel>" in guest.xml
    assert f'<loader type="rom" readonly="yes">{QBOOT}</loader>' in guest.xml
    release = guest.exec(["uname", "-r"], timeout=60).stdout.strip()
    assert release.endswith("-amd64") and "cloud" not in release  # the generic flavour, not the default cloud one
    assert guest.metadata()["guest_kernel"] == release


def test_same_binaries_as_the_host(guest):
    for argv in (["fio", "--version"], ["sysbench", "--version"], ["dpkg-query", "-W", "-f=${Version}", "hpcc"]):
        assert guest.exec(argv, timeout=60).stdout == run_argv(argv, timeout=30).stdout, argv


def test_exec_status_output_errors_and_cwd(guest):
    r = guest.exec(["sh", "-c", "echo out; echo err >&2; pwd; exit 3"], timeout=60, cwd="/bench/work")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n/bench/work\n", "err\n")
    assert guest.exec(["no-such-program"], timeout=60).returncode == 127


def test_timeout_kills_the_process_tree_inside(guest):
    r = guest.exec(["sh", "-c", "sleep 300 & sleep 300"], timeout=3)
    assert r.timed_out and r.returncode is None
    assert "sleep 300" not in guest.exec(["ps", "-eo", "args"], timeout=60).stdout


def test_files_in_and_out_and_the_data_disk(guest):
    payload = bytes(range(256)) * 8192  # 2 MiB, more than one agent chunk
    guest.put_file("/bench/work/a/blob", payload)
    assert guest.get_file("/bench/work/a/blob") == payload
    with pytest.raises(FileNotFoundError):
        guest.get_file("/bench/work/missing")
    mounts = guest.exec(["cat", "/proc/mounts"], timeout=60).stdout
    assert "/dev/vdb /bench/work ext4" in mounts  # fio's files are on the virtio data disk


def test_server_in_the_guest_is_reached_through_loopback(guest):
    control, data = guest.ports
    server = guest.start_server(["netserver", "-D", "-4", "-L", guest.listen_address, "-p", str(control)], "ns")
    try:
        assert guest.wait_listening(control, timeout=60)
        address, port = guest.endpoint(control)
        assert address == "127.0.0.1"
        r = run_argv(["netperf", "-H", address, "-p", str(port), "-t", "TCP_RR", "-l", "2", "-4", "--",
                      "-P", f",{data}", "-k", "THROUGHPUT"], timeout=60)
        assert r.ok and float(r.stdout.split("THROUGHPUT=")[1].split()[0]) > 0, r.stderr
    finally:
        server.stop()


def test_kvm_is_refused_here_without_allow_tcg(vm_image, tmp_path):
    usable, why = kvm_host.probe_kvm(image.vm_kernel(vm_image)[0])
    if usable:
        pytest.skip("KVM runs guests on this machine")
    r = bench_cli("run", "--env", "kvm", "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and "KVM NOT usable" in r.stderr and "--allow-tcg" in r.stderr
    listing = {e["name"]: e for e in json.loads(bench_cli("list", "environments", "--json").stdout)["environments"]}
    assert not listing["kvm"]["available"]
    # a TCG guest is never part of "every available environment" without --allow-tcg
    assert any("runs only with --allow-tcg" in e["reason"] for e in listing.values())


# Under TCG the tools run 10 to 50 times slower: at the quick sizes hpcc, Redis and MariaDB
# alone would take over 15 minutes of CI here (hpcc and redis-benchmark time out). The quick
# suite runs with every workload of it at short_tools' sizes, which TCG finishes in a few
# minutes: what this test proves is that each tool runs in the guest and its samples say TCG,
# not their size.
# hpcc's own limit at a small n is about 2 minutes, made for a CPU, not for one emulated beside
# the other tests' work (scripts/test.sh runs two at a time): once it ran out under TCG while the
# host's quick suite ran beside it. What this test proves does not depend on how long hpcc takes.
TCG_HPCC_TIMEOUT = 900


@pytest.fixture
def tcg_sized(config_copy):
    short_tools(config_copy)
    edit_catalogue(config_copy, "hpcc.yaml", "  warmups: 0\n", f"  warmups: 0\n  timeout: {TCG_HPCC_TIMEOUT}\n", 1)
    return config_copy


def test_quick_suite_in_kvm_allowing_tcg(vm_image, tmp_path, tcg_sized):
    # The guest's cells only: the host's cells of the quick suite are test_run_host's, at their
    # own sizes.
    # sysbench-cpu asks for a guest of 1 vCPU (as the study sized its guests per test), and comes
    # last: the VM is booted anew for it. (Booting anew at its own size for a workload after it is
    # the same code: test_runner_logic's in-process guest shows the order of sizes.)
    edit_catalogue(tcg_sized, "sysbench.yaml", "    lab: {time: 60}\n",
                   "    lab: {time: 60}\n  guest:\n    quick: {vcpus: 1}\n", 1)
    quick = config.load(tcg_sized).suite("quick").workloads
    (tcg_sized / "suites" / "tcg.yaml").write_text(
        "description: the quick suite, sysbench-cpu last\nprofile: quick\nrepetitions: 1\n"
        f"workloads: {json.dumps([w for w in quick if w != 'sysbench-cpu'] + ['sysbench-cpu'])}\n")
    r = bench_cli("--config-dir", str(tcg_sized), "run", "--suite", "tcg", "--env", "kvm", "--allow-tcg",
                  "--reps", "1", "--out", str(tmp_path), "--run-id", QUICK_KVM,
                  "--scratch", str(tmp_path / "scratch"), timeout=1800)
    assert r.returncode in (0, 1), r.stderr[-3000:]
    assert "EMULATED" in r.stderr and "(TCG)" in r.stdout
    df = bench.load(tmp_path / QUICK_KVM)
    vm = df[df.environment == "kvm"]
    assert set(vm.env_accel) == {"tcg"}  # every sample says it was emulated
    boot = vm[(vm.workload == "provision") & (vm.metric == "boot_to_ready")]
    assert len(boot) == 2 and (boot.value > 0).all()  # the first guest, then sysbench-cpu's
    assert "a guest of vcpus=1 for sysbench-cpu: booting it anew" in r.stderr
    sized = vm[vm.workload == "sysbench-cpu"]
    assert set(sized.env_vcpus) == {1} and vm[vm.workload == "xz-compress"].env_vcpus.isna().all()
    assert set(vm.workload) == set(quick) | {"provision"}
    raw = (tmp_path / QUICK_KVM / "raw" / "kvm" / "sysbench-cpu" / "rep-1.txt").read_text()
    assert "Number of threads: 1" in raw  # one thread per CPU the guest has: it had one
    guests = json.loads((tmp_path / QUICK_KVM / "run.json").read_text())["environments"]["kvm"]["guests"]
    assert [g["for"] for g in guests] == ["sysbench-cpu"] and guests[0]["metadata"]["vcpus"] == 1
    for workload, metric in [("fio-randread-4k", "read_iops"), ("sysbench-cpu", "events_per_second"),
                             ("xz-compress", "compress_throughput"), ("hpcc", "hpl_gflops"),
                             ("netperf-tcp-rr", "latency_mean"), ("netperf-tcp-stream", "throughput_mbps"),
                             ("redis", "get_requests_per_second"), ("mariadb-oltp", "transactions_per_second")]:
        rows = df[(df.workload == workload) & (df.metric == metric)]
        assert set(rows.environment) == {"kvm"}, workload
        assert (rows.value > 0).all(), workload
    manifest = json.loads((tmp_path / QUICK_KVM / "run.json").read_text())
    meta = manifest["environments"]["kvm"]["metadata"]
    assert meta["accel"] == "tcg" and meta["emulated"] is True
    assert meta["guest_kernel"].endswith("-cloud-amd64")  # the image's cloud kernel, the default
    assert manifest["environments"]["kvm"]["variant_as_run"]["accel"] == "tcg"
    assert (tmp_path / QUICK_KVM / "raw" / "kvm" / "provision" / "console.log").exists()
    # each guest's console log is kept: the first's, sysbench-cpu's 1-vCPU one
    assert all((tmp_path / QUICK_KVM / "raw" / "kvm" / folder / "console.log").exists()
               for folder in ("provision", "provision-2"))
    assert domains_of(QUICK_KVM) == []


def test_cleanup_removes_the_domain_a_killed_run_left(guest):
    """Last in the module: its guest, never torn down by this process, is left as a SIGKILLed
    run leaves its guest; `bench cleanup --run-id` finds the domain and its disk folder and
    removes them."""
    run_id = guest.run_id
    assert domains_of(run_id) == [f"bench-{run_id}-tcg", str(settings.current().vm_dir / f"bench-{run_id}-tcg")]
    assert "would remove domain" in bench_cli("cleanup", "--run-id", run_id, "--dry-run").stdout
    assert bench_cli("cleanup", "--run-id", run_id).returncode == 0
    assert domains_of(run_id) == []
