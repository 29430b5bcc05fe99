"""Daemon-wide Docker variants on a second, real dockerd (vfs, userns remapping), container
security layers and cgroup limits on the main one: each checked in what Docker reports and in
what the process inside sees."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import settings
from bench.environments import dockerd
from bench.environments.docker import DockerEnvironment, apparmor_enabled

from conftest import bench_cli, no_second_dockerd_left, short_tools

pytestmark = pytest.mark.integration
SESSION = f"t{os.getpid()}"  # machine-wide names (folders, bridges, labels): unique per session


@pytest.fixture(scope="module")
def workload_image(docker_client):
    from bench import image

    return image.docker_image(docker_client, image.recipe())


def tiny_suite(config: Path, workloads: list[str]) -> str:
    short_tools(config)   # what these tests ask is where a tool ran, not how long or after what warm-up
    (config / "suites" / "tiny.yaml").write_text(
        f"description: a few small cells\nprofile: quick\nrepetitions: 1\nworkloads: {json.dumps(workloads)}\n")
    return "tiny"


def samples_of(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]


# docker-vfs's second daemon, its cells and what is left of it are test_faults': one run
# measures there, has its daemon killed and is killed itself (a vfs daemon costs half a minute
# to make and remove here).


@pytest.fixture
def make_env(workload_image, tmp_path):
    made = []

    def make(name: str, variant: dict) -> DockerEnvironment:
        env = DockerEnvironment(name, {"network": "nat", "storage": "volume", **variant}, f"{SESSION}-{name}")
        made.append(env)
        env.provision(str(tmp_path), n_ports=1)
        return env

    yield make
    for env in made:
        env.teardown()


def status_field(env: DockerEnvironment, field: str) -> str:
    r = env.exec(["grep", f"^{field}:", "/proc/self/status"], timeout=30)
    return r.stdout.split(":", 1)[1].strip()


def test_seccomp_unconfined_is_what_the_container_runs_with(make_env):
    default = make_env("sec-default", {})
    unconfined = make_env("sec-unconfined", {"seccomp": "unconfined"})
    assert status_field(default, "Seccomp") == "2"      # a filter is installed
    assert status_field(unconfined, "Seccomp") == "0"   # none
    assert unconfined.container.attrs["HostConfig"]["SecurityOpt"] == ["seccomp=unconfined"]
    assert unconfined.metadata()["security_opt"] == "seccomp=unconfined"
    assert default.metadata()["security_opt"] == "default"


def test_cap_drop_all_leaves_no_capability_and_the_tools_still_run(make_env):
    env = make_env("capdrop", {"cap_drop": ["ALL"]})
    assert int(status_field(env, "CapEff"), 16) == 0
    assert env.metadata()["cap_drop"] == "ALL"
    for argv in (["sysbench", "threads", "--threads=2", "--time=1", "run"],
                 ["fio", "--name=x", f"--directory={env.workdir}", "--size=4M", "--rw=randread",
                  "--direct=1", "--ioengine=libaio", "--runtime=1", "--output-format=json"]):
        r = env.exec(argv, timeout=60)
        assert r.ok, (argv, r.stderr[-500:])


def test_cpu_quota_is_in_the_containers_cgroup(make_env):
    env = make_env("cpus-half", {"cpus": 0.5})
    assert env.container.attrs["HostConfig"]["NanoCpus"] == 500_000_000
    # cgroup v2 says "50000 100000" in cpu.max; v1 (this machine) says 50000 in cpu.cfs_quota_us.
    r = env.exec(["sh", "-c", "cat /sys/fs/cgroup/cpu.max 2>/dev/null || "
                              "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us"],
                 timeout=30)
    quota, period = r.stdout.split()
    assert int(quota) / int(period) == 0.5
    assert env.metadata()["nano_cpus"] == 500_000_000


def test_memory_limit_is_in_the_containers_cgroup(make_env):
    env = make_env("memory-256m", {"memory": "256m"})
    r = env.exec(["sh", "-c", "cat /sys/fs/cgroup/memory.max 2>/dev/null || "
                              "cat /sys/fs/cgroup/memory/memory.limit_in_bytes"], timeout=30)
    assert int(r.stdout) == 256 * 2**20 == env.metadata()["memory_limit_bytes"]


def test_userns_remap_maps_root_to_an_unprivileged_range(make_env):
    env = make_env("userns", {"userns_remap": True})
    uid_map = env.exec(["cat", "/proc/self/uid_map"], timeout=30).stdout.split()
    assert uid_map[0] == "0" and uid_map[1] != "0"  # root inside is someone else outside
    meta = env.metadata()
    assert meta["userns_remap"] == "yes" and meta["docker_daemon"].startswith("second dockerd")
    assert env.exec(["sysbench", "threads", "--threads=2", "--time=1", "run"], timeout=60).ok
    folder = env.daemon.folder
    env.teardown()
    assert not folder.exists() and dockerd.processes_of(folder) == []


def test_security_variants_run_sysbench_threads_and_samples_carry_the_variant(docker_client, workload_image,
                                                                               config_copy, tmp_path):
    run_id = f"{SESSION}-seccomp"
    suite = tiny_suite(config_copy, ["sysbench-threads"])
    r = bench_cli("--config-dir", str(config_copy), "run", "--suite", suite,
                  "--env", "docker-nat,docker-seccomp-unconfined", "--out", str(tmp_path), "--run-id", run_id,
                  "--scratch", str(tmp_path / "scratch"))
    assert r.returncode == 0, r.stderr[-3000:]
    rates = {s["environment"]: s for s in samples_of(tmp_path / run_id) if s["metric"] == "events_per_second"}
    assert rates["docker-seccomp-unconfined"]["variant"]["seccomp"] == "unconfined"
    assert rates["docker-nat"]["variant"].get("seccomp", "default") == "default"
    assert all(s["value"] > 0 for s in rates.values())
    meta = json.loads((tmp_path / run_id / "run.json").read_text())["environments"]
    assert meta["docker-seccomp-unconfined"]["metadata"]["security_opt"] == "seccomp=unconfined"


def test_variants_this_host_cannot_run_say_why_without_raising():
    for variant in ({"daemon_storage_driver": "devicemapper"}, {"daemon_storage_driver": "zfs"},
                    {"daemon_storage_driver": "btrfs"}, {"apparmor": "unconfined"}, {"seccomp": "bogus"}):
        try:
            ok, why = DockerEnvironment.availability(DockerEnvironment.Variant.model_validate(variant))
        except ValueError as e:   # not a Docker variant at all: the catalogue refuses it at load
            ok, why = False, str(e)
        if variant.get("apparmor") and apparmor_enabled():
            continue
        if variant.get("daemon_storage_driver") == "btrfs" and dockerd._fs_type(settings.current().dockerd_root) == "btrfs":
            continue
        assert not ok and why, variant
    assert DockerEnvironment.availability(DockerEnvironment.Variant.model_validate({"daemon_storage_driver": "vfs"}))[0]


def test_a_registered_runtime_must_be_the_one_the_variant_uses():
    from bench.environments.docker import DockerVariant

    runsc = {"runsc": {"path": "runsc", "args": ["--platform=ptrace"]}}
    assert DockerVariant(runtime="runsc", daemon_runtimes=runsc).own_daemon
    with pytest.raises(ValueError, match="runtime must name one of daemon_runtimes"):
        DockerVariant(daemon_runtimes=runsc)
    d = dockerd.Dockerd("r", "e", runtimes={"runsc": {"path": "runsc", "runtimeArgs": ["--platform=ptrace"]}})
    argv = d.argv("10.0.0.1/24")
    assert argv[argv.index("--config-file") + 1] == str(d.folder / "daemon.json")
    ok, why = DockerEnvironment.availability(DockerEnvironment.Variant.model_validate({"runtime": "nosuch", "daemon_runtimes": {"nosuch": {"path": "no-such-runtime"}}}))
    assert not ok and "no-such-runtime" in why


@pytest.mark.skipif(not __import__("shutil").which("runsc"), reason="runsc (gVisor) is not installed")
def test_gvisor_runs_tools_under_its_own_kernel_beside_runc(docker_client, workload_image, config_copy, tmp_path):
    """docker-gvisor: the tools run under gVisor's Sentry (its own kernel release, seen by the
    parity probe), every difference from native is explained by the runtime, and the second
    dockerd that carried it is gone afterwards. xz proves the corpus's size is read portably."""
    run_id = f"{SESSION}-gvisor"
    suite = tiny_suite(config_copy, ["sysbench-cpu", "xz-compress", "netperf-tcp-rr"])
    r = bench_cli("--config-dir", str(config_copy), "run", "--suite", suite, "--env", "docker-nat,docker-gvisor",
                  "--out", str(tmp_path), "--run-id", run_id, "--scratch", str(tmp_path / "scratch"))
    assert r.returncode == 0, r.stderr[-3000:]
    run = json.loads((tmp_path / run_id / "run.json").read_text())
    assert run["environments"]["docker-gvisor"]["metadata"]["runtime"] == "runsc"
    assert run["environments"]["docker-nat"]["metadata"]["runtime"] in ("runc", "")
    kernels = {e: c.get("kernel_release") for e, c in run["execution_context"].items()}
    assert kernels["docker-gvisor"] != kernels["native"]  # gVisor's own, not the host's
    differences = run["parity"]["docker-gvisor"]
    assert differences and not [d for d in differences if d["blocking"]], differences
    assert all(d["intended"] for d in differences if d["decisive"])
    got = {(s["environment"], s["workload"]) for s in samples_of(tmp_path / run_id) if s["metric"] != "provision"}
    for workload in ("sysbench-cpu", "xz-compress", "netperf-tcp-rr"):
        assert ("docker-gvisor", workload) in got and ("docker-nat", workload) in got
    no_second_dockerd_left(run_id, "docker-gvisor")
