"""Faults a lab meets, on real daemons and real file systems: the results folder's file system
filling up mid-run, Ctrl-C and SIGTERM at instants of a container's provisioning, a second
dockerd (docker-vfs, whose cells are measured there too) killed under a run, the KVM probe's
bench killed. Each asserts that nothing is left, that no sample is lost or measured twice, and
that no traceback reaches the terminal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

import bench
from bench import settings
from bench.environments import dockerd
from bench.environments.docker import LABEL_RUN

from conftest import ROOT, bench_cli, no_second_dockerd_left, short_tools, tools_of

SESSION = f"f{os.getpid()}"  # machine-wide names: unique per session


def sysbench_suite(config: Path, reps: int) -> list[str]:
    """A suite of sysbench-cpu alone, `reps` repetitions of 1 s, no warm-up."""
    (config / "suites" / "faults.yaml").write_text(
        f"description: faults\nprofile: quick\nrepetitions: {reps}\nworkloads: [sysbench-cpu]\n")
    catalogue = config / "catalogue" / "sysbench.yaml"
    catalogue.write_text(catalogue.read_text().replace("warmups: 1", "warmups: 0")
                         .replace("quick: {time: 3}", "quick: {time: 1}"))
    return ["--config-dir", str(config), "run", "--suite", "faults"]


def repetitions(run: Path) -> dict[tuple[str, int], int]:
    """(environment, repetition) -> samples of sysbench-cpu."""
    df = bench.load(run)
    df = df[df.workload == "sysbench-cpu"]
    return {key: len(group) for key, group in df.groupby(["environment", "repetition"])}


def start_measuring(args: list[str], run_id: str, run: Path, timeout: float) -> subprocess.Popen:
    """`bench ARGS --run-id RUN_ID` in a child, returned once a repetition of sysbench-cpu is stored."""
    proc = subprocess.Popen([sys.executable, "-m", "bench", *args, "--run-id", run_id], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples = run / "samples.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (samples.exists() and '"sysbench-cpu"' in samples.read_text()):
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.1)
    return proc


@pytest.fixture
def small_tmpfs(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.mark.integration
def test_out_on_a_file_system_that_fills_mid_run_then_resume(config_copy, tmp_path, small_tmpfs):
    """The results folder's file system full in the middle of a run: the error in one line, exit
    1 (it ran: not 2, which says nothing was run) with the command that finishes it, no
    traceback, no temporary file left; once space is freed, --resume completes every
    repetition with all its metrics, none twice."""
    run_id = f"{SESSION}-full"
    args = [*sysbench_suite(config_copy, 6), "--env", "host", "--out", str(small_tmpfs),
            "--scratch", str(tmp_path / "scratch")]
    proc = start_measuring(args, run_id, small_tmpfs / run_id, timeout=120)
    filler = small_tmpfs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:  # every block that is left
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err[-2000:]
    assert "No space left on device" in err and "Traceback" not in err, err[-2000:]
    assert f"finish it with: bench run --out {small_tmpfs} --resume {run_id}" in err, err[-2000:]
    assert [p.name for p in (small_tmpfs / run_id).iterdir() if p.name.startswith(".run.")] == []
    filler.unlink()

    r = bench_cli(*args[:2], "run", "--out", str(small_tmpfs), "--scratch", str(tmp_path / "scratch"),
                  "--resume", run_id)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((small_tmpfs / run_id / "run.json").read_text())["status"] == "complete"
    counts = repetitions(small_tmpfs / run_id)
    assert sorted(counts) == [("host", rep) for rep in range(1, 7)]
    assert set(counts.values()) == {3}, counts  # events/s, latency mean and p95: none lost, none twice


def labelled(docker_client, run_id: str) -> list[str]:
    selector = {"label": f"{LABEL_RUN}={run_id}"}
    return ([f"container {c.name}" for c in docker_client.containers.list(all=True, filters=selector)] +
            [f"volume {v.name}" for v in docker_client.volumes.list(filters=selector)] +
            [f"network {n.name}" for n in docker_client.networks.list(filters=selector)])


# Instants of the first second: a container's at once (its create request in flight) and once
# it runs (its probes in flight); the instants between went through the same teardown and told
# nothing more. A second dockerd and a TCG guest cost a minute each to make and remove on this
# machine, so they get one instant each (where their requests are in flight). The signals
# alternate, so that each is sent to a container and to a daemon or guest of the run's own.
INSTANTS = [("docker-nat", 0.0), ("docker-nat", 0.2), ("docker-vfs", 0.3), ("tcg", 0.5), ("docker-compose", 0.5)]


@pytest.mark.integration
@pytest.mark.parametrize("environment,delay", INSTANTS)
def test_a_signal_at_an_instant_of_provisioning_leaves_nothing(request, docker_client, config_copy, tmp_path,
                                                                environment, delay):
    """SIGTERM or Ctrl-C (alternately) `delay` s after provisioning begins, of a container, a
    second dockerd (docker-vfs), a TCG guest or a Compose project (during `docker-compose up`):
    exit 130 or 143, no traceback, and nothing of the run
    left: no container, volume,
    network, daemon folder or bridge, domain, disk folder or scratch folder (the requests that
    make them finish before the signal is acted on, and teardown removes them)."""
    from bench import cleanup, image

    if environment == "tcg":
        request.getfixturevalue("vm_image")
    else:
        image.docker_image(docker_client, image.recipe())
    run_id = f"{SESSION}-sig-{environment}-{int(delay * 1000)}"
    suite = sysbench_suite(config_copy, 2)
    if environment == "docker-compose":  # a Compose environment runs its application only
        (config_copy / "suites" / "faults.yaml").write_text(
            "description: faults\nprofile: quick\nrepetitions: 2\nworkloads: [webapp]\n")
    proc = subprocess.Popen([sys.executable, "-m", "bench", *suite, "--env", environment,
                             "--allow-tcg", "--out", str(tmp_path), "--run-id", run_id,
                             "--scratch", str(tmp_path / "scratch")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = ""
    for line in proc.stderr:  # the line printed just before the environment is made
        err += line
        if line.startswith(f"provisioning {environment}"):
            break
    time.sleep(delay)
    sent = signal.SIGINT if INSTANTS.index((environment, delay)) % 2 else signal.SIGTERM
    proc.send_signal(sent)
    out, rest = proc.communicate(timeout=180)
    err += rest
    assert proc.returncode == 128 + sent and "interrupted" in err, err[-2000:]   # 130 or 143
    assert "Traceback" not in err, err[-3000:]
    assert labelled(docker_client, run_id) == []
    assert cleanup.find(run_id, tmp_path / "scratch") == []


# docker-vfs's cells: a disk, a network (through docker-proxy) and a CPU cell, each about a second.
VFS_WORKLOADS = ("fio-randread-4k", "netperf-tcp-rr", "sysbench-cpu")


@pytest.mark.integration
def test_docker_vfs_measures_on_its_own_daemon_which_killed_is_provisioned_anew_then_a_killed_run_leaves_it_to_cleanup(
        docker_client, config_copy, tmp_path):
    """docker-vfs measures fio, netperf and sysbench on a second dockerd of the run's own with the
    vfs storage driver (the main daemon untouched). Its daemon SIGKILLed by its pid after a
    repetition: the cell in flight is a failure of cause "backend", the environment gets a new
    daemon and measures on it. Then the run itself SIGKILLed (nothing of it can tear down): its
    new daemon and bridge are left, `bench cleanup` finds them by the run id and removes them,
    the daemon's processes with them. Nothing of either daemon is left. (--retry-failed is
    proven on docker-nat, in test_docker.py.) One run for all of it: each second daemon with vfs
    costs half a minute to make and remove here."""
    run_id = f"{SESSION}-vfs"
    folder = settings.current().dockerd_root / dockerd.folder_name(run_id, "docker-vfs")
    run = tmp_path / run_id
    (short_tools(config_copy) / "suites" / "vfs.yaml").write_text(
        f"description: docker-vfs\nprofile: quick\nrepetitions: 40\nworkloads: {json.dumps(list(VFS_WORKLOADS))}\n")
    args = ["--config-dir", str(config_copy), "run", "--suite", "vfs", "--env", "docker-vfs", "--out", str(tmp_path),
            "--scratch", str(tmp_path / "scratch")]
    proc = start_measuring(args, run_id, run, timeout=300)
    first = int((folder / "docker.pid").read_text())
    os.kill(first, signal.SIGKILL)
    try:
        # measured on the new daemon: a repetition stored after the failed one (and every cell once)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (
                (run / "failures.jsonl").exists() and _measured_after_the_failure(run)):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.2)
        second = int((folder / "docker.pid").read_text())
        assert second != first and not Path(f"/proc/{first}").exists()
        proc.kill()
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err and "docker-vfs provisioned anew" in err, err[-3000:]
        assert {kind for kind, *_ in dockerd.leftovers(run_id)} == {"second dockerd", "bridge"}
        assert Path(f"/proc/{second}").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        r = bench_cli("cleanup", "--run-id", run_id)
    assert r.returncode == 0, r.stderr
    assert "second dockerd" in r.stdout and "bridge" in r.stdout
    assert not Path(f"/proc/{second}").exists()
    no_second_dockerd_left(run_id, "docker-vfs")
    assert docker_client.info()["Driver"] == "overlay2"  # the main daemon is untouched

    # What docker-vfs measured, and on what.
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    by = {(s["workload"], s["metric"]): s for s in samples}
    assert by[("fio-randread-4k", "read_iops")]["value"] > 0
    assert by[("netperf-tcp-rr", "latency_mean")]["value"] > 0  # through docker-proxy on 127.0.0.1
    assert {s["variant"]["daemon_storage_driver"] for s in samples} == {"vfs"}
    assert by[("provision", "container_start")]["value"] > 0
    meta = json.loads((run / "run.json").read_text())["environments"]["docker-vfs"]["metadata"]
    assert meta["storage_driver"] == "vfs"  # asked of the second daemon, not the main one
    assert meta["docker_daemon"].startswith("second dockerd")

    # No cell lost or measured twice: a failed one was not stored, each stored one is whole.
    failures = [json.loads(line) for line in (run / "failures.jsonl").read_text().splitlines()]
    assert {f["cause"] for f in failures} == {"backend"}
    failed = {(f["workload"], f["repetition"]) for f in failures}
    measured = {(s["workload"], s["repetition"]) for s in samples if s["workload"] != "provision"}
    assert not failed & measured and max(rep for _, rep in measured) > max(rep for _, rep in failed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the run is interrupted, as it was killed
        counts = repetitions(run)
    assert set(counts.values()) == {3}, counts   # events/s, latency mean and p95: none lost, none twice


def _measured_after_the_failure(run: Path) -> bool:
    """A cell stored after the failed one's repetition, and each of VFS_WORKLOADS stored."""
    failed = [json.loads(line)["repetition"] for line in (run / "failures.jsonl").read_text().splitlines()]
    measured = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    return (bool(failed) and any(s["repetition"] > max(failed) for s in measured if s["workload"] != "provision")
            and set(VFS_WORKLOADS) <= {s["workload"] for s in measured})


def probe_qemus() -> dict[int, int]:
    """pid -> parent pid of every QEMU started with -accel kvm and no disk (the probe's)."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if entry.name.isdigit() and cmdline[0].endswith(b"qemu-system-x86_64") and b"kvm" in cmdline:
                found[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return found


@pytest.mark.alone   # the probe's cached answer, put aside, is every run's
@pytest.mark.integration
@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_the_kvm_probes_qemu_goes_with_bench(vm_image, tmp_path, how):
    """`bench doctor` killed (or Ctrl-C) while its KVM probe's QEMU runs: the QEMU goes too; a
    Ctrl-C is one line and exit 130. (The probe's cached answer is put aside, so that it probes.)"""
    from bench.environments import kvm_host

    if not os.path.exists("/dev/kvm"):
        pytest.skip("no /dev/kvm: the probe starts no QEMU")
    cached = kvm_host.probe_cache()
    if cached.exists():
        cached.rename(tmp_path / "kvm-probe.json")
    try:
        interrupt_the_probe(how)
    finally:
        if (tmp_path / "kvm-probe.json").exists():
            (tmp_path / "kvm-probe.json").rename(cached)


def interrupt_the_probe(how: str) -> None:
    # SIGINT as a terminal delivers it: a job started in the background by a shell without job
    # control (CI's `... &`) inherits it ignored, and Python then keeps it ignored.
    proc = subprocess.Popen([sys.executable, "-m", "bench", "doctor"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    mine: list[int] = []
    while time.monotonic() < deadline and not mine and proc.poll() is None:
        mine = [pid for pid, parent in probe_qemus().items() if parent == proc.pid]
        time.sleep(0.1)
    if not mine:
        proc.kill()
        pytest.skip("the probe ended before it could be interrupted (KVM answered at once?)")
    proc.send_signal(getattr(signal, how))
    _, err = proc.communicate(timeout=60)
    if how in ("SIGINT", "SIGTERM"):   # said, 130 or 143; SIGKILL says nothing
        assert proc.returncode == 128 + getattr(signal, how) and "interrupted" in err, err[-2000:]
        assert "Traceback" not in err, err[-2000:]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in mine):
        time.sleep(0.1)
    assert not any(alive(pid) for pid in mine), "the probe's QEMU outlived bench"


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it is gone for our purpose)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def libvirtd_pid() -> int | None:
    try:
        pid = int(Path("/run/libvirtd.pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def start_libvirtd() -> None:
    """libvirtd as scripts/setup.sh starts it, once it answers."""
    if libvirtd_pid() is None:
        subprocess.run(["libvirtd", "-d"], check=True)
    deadline = time.monotonic() + 120
    while subprocess.run(["virsh", "-c", "qemu:///system", "version"], capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, "libvirtd did not come back"
        time.sleep(1)


@pytest.mark.alone   # the machine's libvirtd: every guest's connection breaks
@pytest.mark.integration
def test_libvirtd_restarted_during_a_tcg_run(vm_image, config_copy, tmp_path):
    """libvirtd stopped and started again while a TCG guest measures: the repetition in flight
    fails for the backend, teardown reaches the guest through a new connection and destroys it,
    the guest boots anew and the run goes on; no domain, QEMU or disk folder of the run is left."""
    from bench import cleanup

    run_id = f"{SESSION}-libvirtd"
    args = [*sysbench_suite(config_copy, 3), "--env", "tcg", "--allow-tcg", "--out", str(tmp_path),
            "--scratch", str(tmp_path / "scratch")]
    proc = start_measuring(args, run_id, tmp_path / run_id, timeout=300)
    try:
        pid = libvirtd_pid()
        assert pid is not None, "libvirtd runs without /run/libvirtd.pid"
        os.kill(pid, signal.SIGTERM)  # the guest's QEMU goes on; bench's connection breaks
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)
    finally:
        start_libvirtd()
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err and "tcg provisioned anew" in err, err[-3000:]
    failures = [json.loads(line) for line in (tmp_path / run_id / "failures.jsonl").read_text().splitlines()]
    assert failures and {f["cause"] for f in failures} == {"backend"}
    assert cleanup.find(run_id, tmp_path / "scratch") == []
    lost = {f["repetition"] for f in failures}
    assert {rep for _, rep in repetitions(tmp_path / run_id)} == {1, 2, 3} - lost, "the new guest measured on"


@pytest.mark.integration
def test_a_tool_behind_a_shell_outlives_a_killed_run_and_cleanup_stops_it(config_copy, tmp_path):
    """xz runs behind its script's pipe: SIGKILL of bench kills the script (a parent-death
    signal), not xz. `bench cleanup --run-id` finds it by its HOME, the run's scratch folder,
    and stops it with the folder."""
    run_id = f"{SESSION}-orphan"
    scratch = tmp_path / "scratch"
    (config_copy / "suites" / "xz.yaml").write_text(
        "description: xz\nprofile: quick\nrepetitions: 1\nworkloads: [xz-compress]\n")
    proc = subprocess.Popen([sys.executable, "-m", "bench", "--config-dir", str(config_copy), "run", "--suite", "xz",
                             "--env", "host", "--out", str(tmp_path), "--run-id", run_id, "--scratch", str(scratch)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    xz: list[int] = []
    while time.monotonic() < deadline and not xz:
        assert proc.poll() is None, "the run ended before xz was seen"
        xz = list(tools_of(scratch, {"xz"}))
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=30)
    try:
        assert any(alive(pid) for pid in xz), "xz died with bench: nothing for cleanup to find"
        r = bench_cli("cleanup", "--run-id", run_id, "--scratch", str(scratch))
        assert r.returncode == 0, r.stderr
        assert "process xz" in r.stdout and "scratch folder" in r.stdout, r.stdout
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and tools_of(scratch):
            time.sleep(0.1)
        assert not any(alive(pid) for pid in xz)
        assert list(scratch.glob(f"bench-{run_id}-*")) == []
    finally:
        for pid in xz:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.integration
def test_sigterm_while_the_report_is_written_says_how_to_render_it(config_copy, tmp_path):
    """The run is complete when its report is being written: SIGTERM then exits 143 with the
    line that renders the report, not silently without one."""
    run_id = f"{SESSION}-report"
    args = [*sysbench_suite(config_copy, 1), "--env", "host", "--out", str(tmp_path),
            "--scratch", str(tmp_path / "scratch"), "--run-id", run_id]
    proc = subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    # The summary's last line is printed just before the report is rendered.
    for line in proc.stdout:
        if line.startswith("pandas: bench.load("):
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    run = tmp_path / run_id
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    assert f"render it with: bench report {run} -o {run / 'report.html'}" in err, err[-2000:]
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    assert not (run / "report.html").exists()


@pytest.mark.integration
def test_resume_rewrites_a_torn_batch_away_and_warns_in_plain_lines(config_copy, tmp_path):
    """A killed writer's half-written repetition (two lines of a batch of three, and a torn
    line): --resume measures it again and leaves a file every reader reads without a warning,
    and no warning of its own reaches the terminal as Python's `UserWarning` with its source."""
    run_id = f"{SESSION}-torn"
    args = [*sysbench_suite(config_copy, 2), "--env", "host", "--out", str(tmp_path),
            "--scratch", str(tmp_path / "scratch")]
    r = bench_cli(*args, "--run-id", run_id)
    assert r.returncode == 0, r.stderr[-2000:]
    run = tmp_path / run_id
    lines = (run / "samples.jsonl").read_text().splitlines(keepends=True)
    last = json.loads(lines[-1])
    assert last["repetition"] == 2 and last["batch_size"] == 3
    (run / "samples.jsonl").write_text("".join(lines[:-1]) + '{"run_id": "' + run_id + '", "env')
    manifest = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**manifest, "status": "interrupted"}))
    with pytest.warns(UserWarning, match="not wholly written"):
        bench.load(run)

    r = bench_cli(args[0], args[1], "run", "--out", str(tmp_path), "--scratch", str(tmp_path / "scratch"),
                  "--resume", run_id)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "UserWarning" not in r.stderr and "warnings.warn" not in r.stderr, r.stderr[-2000:]
    assert "dropping 3 half-written line(s)" in r.stderr, r.stderr[-2000:]
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # a complete run's file is whole: nothing to warn of
        counts = repetitions(run)
    assert counts == {("host", 1): 3, ("host", 2): 3}, counts
    assert (run / "samples.jsonl").read_text().endswith("\n")
    assert json.loads((run / "run.json").read_text())["status"] == "complete"


@pytest.mark.integration
def test_a_client_namespace_deleted_under_a_run_is_a_backend_fault(docker_client, config_copy, tmp_path):
    """docker-nat-dnat's clients run in a network namespace of the run's own: deleted under the
    run, the next repetition's failure is the environment's (cause backend, with netperf's own
    words), the environment is provisioned anew with a new namespace, and the run goes on."""
    from bench import cleanup
    from bench.environments import netns

    run_id = f"{SESSION}-netns"
    (config_copy / "catalogue" / "np.yaml").write_text(
        "np-rr:\n  tool: netperf\n  warmups: 0\n  params: {test: TCP_RR, length: 2}\n")
    (config_copy / "suites" / "np.yaml").write_text("repetitions: 4\nworkloads: [np-rr]\n")
    args = ["--config-dir", str(config_copy), "run", "--suite", "np", "--env", "docker-nat-dnat",
            "--out", str(tmp_path), "--scratch", str(tmp_path / "scratch")]
    proc = subprocess.Popen([sys.executable, "-m", "bench", *args, "--run-id", run_id], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = tmp_path / run_id
    try:
        deadline = time.monotonic() + 300
        while not ((run / "samples.jsonl").exists() and '"np-rr"' in (run / "samples.jsonl").read_text()):
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "no repetition measured"
            time.sleep(0.1)
        mine = [n for n in netns.namespaces() if netns.owner(n) == run_id]
        assert len(mine) == 1, mine
        subprocess.run(["ip", "netns", "delete", mine[0]], check=True)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=120)
        for leftover in cleanup.find(run_id, tmp_path / "scratch"):
            leftover.remove()
    assert proc.returncode == 1, err[-2000:]   # ran, with a failed repetition
    failures = [json.loads(line) for line in (run / "failures.jsonl").read_text().splitlines()]
    assert [f["cause"] for f in failures] == ["backend"], failures
    assert "network namespace" in failures[0]["reason"], failures[0]["reason"]
    manifest = json.loads((run / "run.json").read_text())
    assert [r["environment"] for r in manifest["reprovisioned"]] == ["docker-nat-dnat"]
    measured = {rep for (_, rep) in repetitions_of(run, "np-rr")}
    assert len(measured) == 3 and failures[0]["repetition"] not in measured


def repetitions_of(run: Path, workload: str) -> set[tuple[str, int]]:
    df = bench.load(run)
    df = df[df.workload == workload]
    return set(zip(df.environment, df.repetition))


@pytest.mark.integration
def test_a_tool_paused_mid_repetition_fails_it_and_retry_failed_measures_it_again(config_copy, tmp_path):
    """SIGSTOP to sysbench for 3 s of a 2 s repetition: no sample of the pause (its events per
    second would be a fraction), a failure of cause `paused` that says so, and --retry-failed
    measures that repetition again. Fails where a paused repetition was stored with its wall time."""
    import psutil

    suite = sysbench_suite(config_copy, reps=3)
    catalogue = config_copy / "catalogue" / "sysbench.yaml"
    catalogue.write_text(catalogue.read_text().replace("quick: {time: 1}", "quick: {time: 2}"))
    run_id = f"{SESSION}-paused"
    proc = start_measuring(suite + ["--env", "host", "--out", str(tmp_path), "--scratch", str(tmp_path / "s")],
                           run_id, tmp_path / run_id, timeout=120)   # repetition 1 is stored

    def measuring() -> psutil.Process | None:   # the next repetition's sysbench, under this bench
        return next((p for p in psutil.process_iter(["name"]) if p.info["name"] == "sysbench"
                     and proc.pid in [a.pid for a in p.parents()]), None)

    deadline = time.monotonic() + 60
    while (tool := measuring()) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tool is not None, "a second repetition of sysbench should run by now"
    tool.send_signal(signal.SIGSTOP)
    time.sleep(3)
    tool.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err[-2000:]
    (failure,) = [json.loads(line) for line in (tmp_path / run_id / "failures.jsonl").read_text().splitlines()]
    assert failure["cause"] == "paused" and "the tool was stopped for about" in failure["reason"], failure
    assert "stopped for about" in err
    done = repetitions(tmp_path / run_id)
    assert ("host", failure["repetition"]) not in done and len(done) == 2
    r = bench_cli(*suite[:2], "run", "--out", str(tmp_path), "--resume", run_id, "--retry-failed")
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(repetitions(tmp_path / run_id)) == 3
