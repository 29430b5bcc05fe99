"""`bench doctor` on this very machine, against facts found here by other means; and its /sys
readers on fake trees for the knobs this machine does not expose (cpufreq, turbo, DMI)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bench import doctor
from bench.workloads import TOOLS

from conftest import bench_cli


def lines_of(stdout: str) -> dict[str, str]:
    """check name -> its line, from the human output (a long one wraps onto indented lines
    under its detail column: joined again here)."""
    found: dict[str, str] = {}
    name = None
    for line in stdout.splitlines():
        parts = line.split()
        if parts and parts[0] in (doctor.OK, doctor.WARN, doctor.FAIL):
            name = line[8:31].strip()
            found[name] = line.strip()
        elif name and line.startswith(" " * 31) and line.strip():
            found[name] += " " + line.strip()
        else:
            name = None
    return found


@pytest.fixture(scope="module")
def real(vm_image):
    """(the human output, the JSON) of the real command; vm_image first, since the KVM probe
    boots the image's kernel."""
    r = bench_cli("doctor", timeout=120)
    j = bench_cli("doctor", "--json", timeout=120)
    return r, j


def test_exits_0_here_and_tells_the_truth_about_the_environments(real):
    r, _ = real
    assert r.returncode == 0, r.stdout + r.stderr
    checks = lines_of(r.stdout)
    # dockerd answers here: ask it ourselves.
    docker = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True)
    assert docker.returncode == 0
    assert checks["docker"].startswith("OK") and docker.stdout.strip() in checks["docker"]
    virsh = subprocess.run(["virsh", "-c", "qemu:///system", "version"], capture_output=True, text=True)
    assert virsh.returncode == 0 and checks["libvirt"].startswith("OK")
    # This machine is a VM whose /dev/kvm exists but whose nested KVM hangs a guest: the
    # doctor must say what the boot probe found, not what the device node suggests.
    assert os.path.exists("/dev/kvm")
    vm = subprocess.run(["systemd-detect-virt", "--vm"], capture_output=True, text=True).stdout.strip()
    assert vm not in ("", "none")
    assert checks["kvm"].startswith("WARN") and "KVM NOT usable" in checks["kvm"] and "--allow-tcg" in checks["kvm"]
    # and why: this host's /dev/kvm is PVM's (the module is loaded), which boots no Debian kernel
    if Path("/sys/module/kvm_pvm").exists():
        assert "PVM" in checks["kvm"] and "guest_kernel" in r.stdout
    assert "nested" in checks["bare metal"] and vm in checks["bare metal"]
    assert checks["vm programs"].startswith("OK") and shutil.which("qemu-system-x86_64")
    assert "the host environment can run every workload" in r.stdout
    assert all(len(line) <= 100 for line in r.stdout.splitlines()), max(r.stdout.splitlines(), key=len)


def test_tools_and_noise_match_this_machine(real):
    r, _ = real
    checks = lines_of(r.stdout)
    for name, tool in TOOLS.items():
        line = checks[f"tool {name}"]
        assert line.startswith("OK"), line
        for program in (*tool.programs, *tool.client_programs):
            assert shutil.which(program) in line
    # No cpufreq in this VM: said, not guessed.
    assert not list(Path("/sys/devices/system/cpu").glob("cpu*/cpufreq/scaling_governor"))
    assert "not exposed" in checks["cpu governor"] and checks["cpu governor"].startswith("WARN")
    swaps = Path("/proc/swaps").read_text().splitlines()[1:]
    assert checks["swap"].startswith("OK") == (not swaps or "none in use" in checks["swap"])
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    assert doctor._bracketed(thp) in checks["transparent hugepages"]
    assert f"on {os.cpu_count()} CPUs" in checks["other load"]


def test_json_parses_and_agrees(real):
    r, j = real
    assert j.returncode == 0, j.stderr
    doc = json.loads(j.stdout)
    assert doc["status"] == 0
    by_name = {c["name"]: c for c in doc["checks"]}
    assert set(by_name) == set(lines_of(r.stdout))
    assert by_name["docker"]["status"] == "OK" and by_name["kvm"]["status"] == "WARN"
    assert all(c["status"] in ("OK", "WARN") for c in doc["checks"])
    assert by_name["kvm"]["fix"]


def test_a_missing_tool_fails_with_its_package(tmp_path):
    """A PATH without sysbench: the host cannot run sysbench-cpu nor MariaDB's client, exit 1."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wanted = {p for t in TOOLS.values() for p in (*t.programs, *t.client_programs)} | {"tar", "qemu-system-x86_64"}
    for program in wanted - {"sysbench"}:
        if "/" not in program and shutil.which(program):  # an absolute program is found by its path
            (bin_dir / program).symlink_to(shutil.which(program))
    r = bench_cli("doctor", env={"PATH": str(bin_dir)}, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    checks = lines_of(r.stdout)
    assert checks["tool sysbench"].startswith("FAIL") and "apt-get install sysbench" in checks["tool sysbench"]
    assert checks["tool mariadb"].startswith("FAIL") and "sysbench" in checks["tool mariadb"]
    assert checks["tool fio"].startswith("OK")
    assert "cannot run: tool mariadb, tool sysbench missing" in r.stdout
    # Without systemd-detect-virt on PATH, the cpuinfo hypervisor flag still gives the VM away.
    assert "a VM" in checks["bare metal"]


# -- fake /sys trees: knobs this VM does not have -----------------------------------------------

def fake_cpus(root: Path, governor: str, n: int = 2) -> Path:
    for i in range(n):
        f = root / f"devices/system/cpu/cpu{i}/cpufreq/scaling_governor"
        f.parent.mkdir(parents=True)
        f.write_text(governor + "\n")
    return root


def test_powersave_governor_warns_with_the_fix(tmp_path):
    c = doctor.check_governor(fake_cpus(tmp_path, "powersave"))
    assert c.status == doctor.WARN and "powersave on 2 of 2 CPUs" in c.detail
    assert "--tune" in c.fix and "--tune" in c.line()


def test_performance_governor_is_ok_and_none_is_not_exposed(tmp_path):
    assert doctor.check_governor(fake_cpus(tmp_path / "a", "performance")).status == doctor.OK
    empty = doctor.check_governor(tmp_path / "b")
    assert empty.status == doctor.WARN and "not exposed" in empty.detail


def test_turbo_knobs(tmp_path):
    intel = tmp_path / "intel" / "devices/system/cpu/intel_pstate"
    intel.mkdir(parents=True)
    (intel / "no_turbo").write_text("0\n")
    c = doctor.check_turbo(tmp_path / "intel")
    assert c.status == doctor.WARN and "no_turbo" in c.fix
    boost = tmp_path / "amd" / "devices/system/cpu/cpufreq"
    boost.mkdir(parents=True)
    (boost / "boost").write_text("0\n")
    assert doctor.check_turbo(tmp_path / "amd").status == doctor.OK


def test_hugepages_always_warns(tmp_path):
    thp = tmp_path / "kernel/mm/transparent_hugepage"
    thp.mkdir(parents=True)
    (thp / "enabled").write_text("[always] madvise never\n")
    c = doctor.check_hugepages(tmp_path)
    assert c.status == doctor.WARN and "echo madvise" in c.fix


def test_bare_metal_and_dmi_vm(tmp_path):
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cpuinfo").write_text("processor\t: 0\nflags\t\t: fpu vme sse2\n")
    assert doctor.check_virtualization(tmp_path / "sys", proc).status == doctor.OK
    dmi = tmp_path / "sys/class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "product_name").write_text("KVM\n")
    c = doctor.check_virtualization(tmp_path / "sys", proc)
    assert c.status == doctor.WARN and "nested" in c.detail


def test_tune_and_reset_the_governor(tmp_path):
    sysfs = fake_cpus(tmp_path / "sys", "powersave")
    saved = tmp_path / "tuning.json"
    assert "performance on 2 CPUs" in doctor.tune(sysfs, saved)
    assert set(doctor.governors(sysfs).values()) == {"performance"}
    doctor.tune(sysfs, saved)  # twice: the saved values stay the original ones
    assert json.loads(saved.read_text())["governors"] == {"cpu0": "powersave", "cpu1": "powersave"}
    assert "powersave" in doctor.reset(sysfs, saved)
    assert set(doctor.governors(sysfs).values()) == {"powersave"} and not saved.exists()
    assert "nothing to reset" in doctor.reset(sysfs, saved)
    assert "exposes no CPU frequency governor" in doctor.tune(tmp_path / "empty", saved)


def test_doctor_names_the_callers_code_path_variables():
    from bench.doctor import check_caller_variables

    c = check_caller_variables({"OPENBLAS_CORETYPE": "Haswell", "LD_PRELOAD": "/x.so", "HOME": "/root"})
    assert c.status == "WARN" and "OPENBLAS_CORETYPE=Haswell" in c.detail and "LD_PRELOAD" in c.detail
    assert "HOME" not in c.detail and "does not pass them" in c.detail and "--pass-env" in c.fix
    assert check_caller_variables({"PATH": "/bin"}).status == "OK"


def test_kvm_obstacles_from_the_hosts_own_signs(tmp_path):
    """Each reason on a fake host: a device node, /sys/module and the CPU flags."""
    from bench.environments.kvm_host import obstacle

    modules, dev = tmp_path / "module", tmp_path / "kvm"
    modules.mkdir()
    vm_flags = {"hypervisor", "sse4_2"}
    assert "nested virtualization" in obstacle(modules=modules, dev_kvm=str(dev), flags=vm_flags)
    assert "modprobe kvm_intel" in obstacle(modules=modules, dev_kvm=str(dev), flags={"vmx"})
    dev.write_text("")
    assert obstacle(modules=modules, dev_kvm=str(dev), flags={"vmx"}) == ""
    (modules / "kvm_pvm").mkdir()
    said = obstacle({"CONFIG_VIRTIO": "y"}, modules=modules, dev_kvm=str(dev), flags=vm_flags)
    assert "PVM" in said and "CONFIG_PVM_GUEST" in said and "Debian ships none" in said
    assert obstacle({"CONFIG_PVM_GUEST": "y"}, modules=modules, dev_kvm=str(dev), flags=vm_flags) == ""
    dev.chmod(0)
    if os.geteuid() != 0:  # root opens it regardless of the mode
        assert "not readable" in obstacle(modules=modules, dev_kvm=str(dev), flags={"vmx"})


# /proc/cpuinfo's first CPU on the Intel Xeon kind where Debian's OpenBLAS falls back (family 6
# model 207), and on this AMD EPYC (shortened to the fields read).
XEON_207 = "processor\t: 0\ncpu family\t: 6\nmodel\t\t: 207\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu sse3 avx avx2 avx512f\n"
EPYC = "processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse3 avx avx2\n"


def test_a_generic_blas_kernel_on_a_cpu_with_avx2_is_a_warning():
    from bench import doctor

    c = doctor.check_blas("Prescott", XEON_207)
    assert c.status == "WARN" and "generic Prescott kernel" in c.detail and "family 6 model 207" in c.detail
    assert doctor.check_blas("SkylakeX", XEON_207).status == "OK"
    assert doctor.check_blas("Cooperlake", EPYC).status == "OK"
    assert doctor.check_blas("", EPYC).status == "OK"
    # this machine's own: whatever OpenBLAS it has, the check reads it
    from bench import blas
    real = doctor.check_blas()
    assert real.status in ("OK", "WARN") and (blas.core() in real.detail or not blas.core())
