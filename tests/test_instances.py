"""The density suite: what an instance costs. Its parser on outputs recorded from real runs, its
bounds refused before anything is made, and real instances on the host, the real dockerd and
libvirt (TCG): started by the environment's own machinery, measured, and removed on success,
failure and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pydantic
import pytest
import yaml

import bench
from bench import hostmem
from bench.environments.docker import LABEL_RUN, DockerEnvironment
from bench.environments.host import HostEnvironment
from bench.errors import ToolError
from bench.report import instances as section
from bench.workloads.instances import Instances

from conftest import ROOT, bench_cli, params, recorded


def parsed(name: str, measure: str):
    return Instances.parse(recorded("instances", name), params("instances", measure=measure))


def by_metric(measurements, metric: str, n: int | None = None) -> list[float]:
    return [m.value for m in measurements if m.metric == metric and (n is None or m.params["instances"] == n)]


# -- the parser, on outputs recorded from real runs ------------------------------------------

def test_serial_starts_give_one_start_and_one_stop_per_cycle():
    raw = json.loads(recorded("instances", "host-start.json"))
    out = parsed("host-start.json", "start")
    assert by_metric(out, "start_latency") == [c["start_s"] for c in raw["cycles"]]
    assert by_metric(out, "stop_latency") == [c["stop_s"] for c in raw["cycles"]]
    assert {m.params["instances"] for m in out} == {1} and {m.unit for m in out} == {"s"}
    assert all(m.better == "lower" and m.value > 0 for m in out)


def test_served_latency_is_the_headline_and_never_before_the_start():
    out = parsed("docker-nat-served.json", "served")
    assert out[0].metric == "served_latency"
    assert all(s >= t for s, t in zip(by_metric(out, "served_latency"), by_metric(out, "start_latency")))


def test_a_density_point_gives_each_instance_its_start_and_memory_per_instance():
    raw = json.loads(recorded("instances", "docker-nat-density.json"))
    out = parsed("docker-nat-density.json", "density")
    for point in raw["points"]:
        n = point["instances"]
        assert len(by_metric(out, "start_latency", n)) == n
        assert len(by_metric(out, "stop_latency", n)) == n
        assert by_metric(out, "start_makespan", n) == [max(point["start_s"])]
        assert by_metric(out, "memory_pss_per_instance", n) == [pytest.approx(point["pss_kib"] / n / 1024)]
        assert by_metric(out, "memory_pss_total", n) == [pytest.approx(point["pss_kib"] / 1024)]
        # a container's shim, its init and its idle process: a few MiB, not nothing
        assert 0.5 < by_metric(out, "memory_pss_per_instance", n)[0] < 64


def test_the_host_holds_no_memory_idle_and_gets_no_memory_figure():
    out = parsed("host-density.json", "density")
    assert by_metric(out, "start_latency") and not by_metric(out, "memory_pss_per_instance")


def test_a_skipped_point_gives_no_samples_and_all_skipped_is_an_error():
    raw = json.loads(recorded("instances", "docker-gvisor-density.json"))   # a copy, altered in memory
    raw["points"][-1] = {"instances": 16, "skipped": "beyond the docker kind's cap of 8 instances at once"}
    out = Instances.parse(json.dumps(raw), params("instances", measure="density"))
    assert 16 not in {m.params["instances"] for m in out} and 8 in {m.params["instances"] for m in out}
    raw["points"] = [{"instances": 1, "skipped": "below the floor"}]
    with pytest.raises(ToolError, match="every point of the sweep was left out"):
        Instances.parse(json.dumps(raw), params("instances", measure="density"))


def test_the_slope_is_least_squares_mib_per_extra_instance():
    assert section.slope([1, 2, 4, 8], [10.0, 13.0, 19.0, 31.0]) == pytest.approx(3.0)
    assert section.slope([4, 4], [1.0, 2.0]) != section.slope([4, 4], [1.0, 2.0])  # NaN: one point


# -- bounds: refused before anything is made --------------------------------------------------

@pytest.mark.parametrize("counts", [[0], [-1], [65], [4, 2], [2, 2]])
def test_instance_counts_out_of_bounds_are_refused(counts):
    with pytest.raises(pydantic.ValidationError):
        params("instances", measure="density", instances=counts)


def _density_suite(config, **entry) -> None:
    (config / "suites" / "d.yaml").write_text("profile: quick\nrepetitions: 1\nworkloads: [instance-density]\n")
    catalogue = config / "catalogue" / "instances.yaml"
    entries = yaml.safe_load(catalogue.read_text())
    entries["instance-density"] = {"tool": "instances", "warmups": 0,
                                   "params": {"measure": "density", "settle": 0, **entry}}
    catalogue.write_text(yaml.safe_dump(entries))


@pytest.mark.parametrize("entry, words", [
    ({"instances": [0]}, "greater than or equal to 1"),
    ({"instances": [1, 100]}, "less than or equal to 64"),
    ({"memory_floor_mib": 1 << 23}, "not below this host's memory"),
])
def test_bad_bounds_get_one_line_and_nothing_is_made(tmp_path, config_copy, entry, words):
    _density_suite(config_copy, **entry)
    r = bench_cli("run", "--suite", "d", "--env", "host", "--out", str(tmp_path / "out"),
                  env={"BENCH_CONFIG_DIR": str(config_copy)})
    assert r.returncode == 2, r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# -- real instances --------------------------------------------------------------------------

@pytest.mark.integration
def test_a_host_instance_is_a_fork_and_holds_nothing(tmp_path):
    env = HostEnvironment("host", {}, f"t{os.getpid()}-hi")
    env.provision(str(tmp_path), n_ports=0)
    try:
        instance = env.instance(1)
        instance.prepare()
        instance.start()
        assert instance.env.exec(["true"], timeout=10).ok and instance.host_pids() == []
        instance.stop()
        assert not os.path.exists(instance.env.workdir or "/nonexistent")
    finally:
        env.teardown()


@pytest.fixture(scope="module")
def nat(docker_client, tmp_path_factory):
    from bench import image

    image.docker_image(docker_client, image.recipe())
    env = DockerEnvironment("docker-nat", {"network": "nat", "storage": "volume"}, f"t{os.getpid()}-inst")
    env.provision(str(tmp_path_factory.mktemp("scratch")), n_ports=1)
    yield env
    env.teardown()


def instance_containers(docker_client, run_id: str) -> list[str]:
    return [c.name for c in docker_client.containers.list(
        all=True, filters={"label": [f"{LABEL_RUN}={run_id}", "bench.role=instance"]})]


@pytest.mark.integration
def test_a_container_instance_is_labelled_measured_and_removed(docker_client, nat):
    instance = nat.instance(1)
    instance.prepare()
    try:
        instance.start()
        assert instance_containers(docker_client, nat.run_id) == [f"bench-{nat.run_id}-docker-nat-i1"]
        pids = instance.host_pids()
        names = {__import__("psutil").Process(p).name() for p in pids}
        assert any(n.startswith("containerd-shim") for n in names), names   # its shim is counted
        assert "sleep" in names
        # its PSS, read by hand from smaps_rollup, is what the workload sums
        assert hostmem.pss_total_kib(pids) == sum(hostmem.pss_kib(p) for p in set(pids)) > 0
        instance.stop()
        assert instance_containers(docker_client, nat.run_id) == []
    finally:
        instance.stop()
        instance.discard()


@pytest.mark.integration
def test_an_instance_whose_stop_was_cut_short_goes_with_its_environment(docker_client, tmp_path):
    env = DockerEnvironment("docker-host", {"network": "host"}, f"t{os.getpid()}-cut")
    try:
        env.provision(str(tmp_path), n_ports=0)
        instance = env.instance(7)
        instance.prepare()
        instance.start()   # and never stopped: the run was cut here
        assert instance_containers(docker_client, env.run_id)
    finally:
        env.teardown()
    assert instance_containers(docker_client, env.run_id) == []
    assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={env.run_id}"}) == []


@pytest.mark.integration
def test_density_runs_end_to_end_on_host_and_docker_and_reports(tmp_path, config_copy, docker_client):
    """The suite through the command line: samples load, the report has its section and the
    first screen's line per environment, and no instance is left."""
    (config_copy / "suites" / "d.yaml").write_text(
        "profile: quick\nrepetitions: 1\nworkloads: [instance-start, instance-served, instance-density]\n")
    catalogue = config_copy / "catalogue" / "instances.yaml"
    entries = yaml.safe_load(catalogue.read_text())
    entries["instance-start"]["profiles"]["quick"] = {"starts": 3, "budget": 30}
    entries["instance-start"]["warmups"] = 0
    entries["instance-served"]["profiles"]["quick"] = {"starts": 1, "budget": 30}
    entries["instance-density"]["profiles"]["quick"] = {"instances": [1, 3], "settle": 1}
    catalogue.write_text(yaml.safe_dump(entries))
    run_id = f"dens-{os.getpid()}"
    r = bench_cli("run", "--suite", "d", "--env", "host,docker-nat", "--out", str(tmp_path), "--run-id", run_id,
                  "--scratch", str(tmp_path / "scratch"), env={"BENCH_CONFIG_DIR": str(config_copy), "COLUMNS": "100"})
    assert r.returncode == 0, r.stderr[-3000:]
    df = bench.load(tmp_path / run_id)
    nat = df[df["environment"] == "docker-nat"]
    assert set(nat.loc[nat["metric"] == "start_latency", "param_instances"]) == {1, 3}
    assert len(nat[(nat["metric"] == "start_latency") & (nat["workload"] == "instance-density")]) == 1 + 3
    assert (nat.loc[nat["metric"] == "memory_pss_per_instance", "value"] > 0).all()
    assert df[(df["environment"] == "host") & (df["metric"] == "memory_pss_per_instance")].empty
    page = (tmp_path / run_id / "report.html").read_text()
    assert 'id="instances"' in page and "What an instance costs" in page
    assert "docker-nat: an instance starts in" in page and "per GiB of host memory" in page
    assert instance_containers(docker_client, run_id) == []
    assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"}) == []
    # the notebook's density cell, on this run: a slope per environment that holds memory
    import contextlib
    import io

    import matplotlib
    import nbformat

    matplotlib.use("Agg")
    cell = nbformat.read(ROOT / "notebooks" / "analysis.ipynb", as_version=4).cells[-1]
    assert "memory_pss_per_instance" in cell.source
    printed = io.StringIO()
    from bench import palette

    with contextlib.redirect_stdout(printed):
        exec(cell.source, {"df": df, "plt": __import__("matplotlib.pyplot").pyplot, "palette": palette})
    assert "docker-nat: " in printed.getvalue() and "MiB per extra instance" in printed.getvalue()


@pytest.mark.integration
def test_ctrl_c_while_instances_idle_removes_them(tmp_path, config_copy, docker_client):
    _density_suite(config_copy, instances=[3], settle=60)
    run_id = f"dens-int-{os.getpid()}"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "run", "--suite", "d", "--env", "docker-host",
                             "--out", str(tmp_path), "--run-id", run_id, "--scratch", str(tmp_path / "s")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "BENCH_CONFIG_DIR": str(config_copy)})
    deadline = time.monotonic() + 180
    while len(instance_containers(docker_client, run_id)) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(instance_containers(docker_client, run_id)) == 3, "the three instances should idle by now"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"}) == []


@pytest.mark.integration
def test_a_tcg_guest_instance_boots_from_the_same_domain_code(vm_image, tmp_path):
    from bench.environments import libvirt as lv

    env = lv.LibvirtEnvironment("tcg", {"accel": "tcg", "memory_mib": 512}, f"t{os.getpid()}-vmi")
    # The instance needs none of the environment's own guest: only its variant and acceleration.
    instance = env.instance(1)
    try:
        instance.prepare()
        instance.start()
        pids = instance.host_pids()
        assert len(pids) == 1 and hostmem.pss_kib(pids[0]) > 10 * 1024   # QEMU, with the guest's touched RAM
        instance.stop()
        assert instance.host_pids() == []
    finally:
        instance.stop()
        instance.discard()
    assert [l for l in lv.LibvirtEnvironment.leftovers(env.run_id)] == []


def test_the_sweep_leaves_out_a_point_beyond_the_cap_or_below_the_memory_floor(tmp_path, monkeypatch):
    """Real host instances; the host's MemAvailable held at 4 GiB so that the floor decides."""
    from bench.workloads.base import CellContext

    env = HostEnvironment("host", {}, f"t{os.getpid()}-floor")
    env.provision(str(tmp_path), n_ports=0)
    env.instance_cap = 4
    monkeypatch.setattr(hostmem, "mem_available_kib", lambda: 4096 * 1024)
    p = params("instances", measure="density", instances=[1, 2, 8, 40], settle=0, memory_floor_mib=1024)
    try:
        raw = Instances().run(CellContext(env, env, p, timeout=60, label="floor"))
    finally:
        env.teardown()
    points = {pt["instances"]: pt for pt in json.loads(raw.text)["points"]}
    assert "skipped" not in points[1] and "skipped" not in points[2]
    assert points[8]["skipped"] == "beyond the host kind's cap of 4 instances at once"
    # 40 is under the cap of 64, but 40 x 64 MiB (the bound while nothing is measured) > 4096 - 2048
    env.instance_cap = 64
    env.provision(str(tmp_path), n_ports=0)
    p = params("instances", measure="density", instances=[40, 48], settle=0, memory_floor_mib=2048)
    try:
        raw = Instances().run(CellContext(env, env, p, timeout=60, label="floor"))
    finally:
        env.teardown()
    skipped = [pt["skipped"] for pt in json.loads(raw.text)["points"]]
    assert skipped == ["40 x ~64 MiB would take MemAvailable (4096 MiB) below the floor of 2048 MiB",
                       "48 x ~64 MiB would take MemAvailable (4096 MiB) below the floor of 2048 MiB"]
    with pytest.raises(ToolError, match="left out"):
        Instances.parse(raw.text, p)


def test_only_a_difference_of_two_readings_may_be_negative():
    """MemAvailable's drop is a difference (another process may free memory meanwhile); a
    negative start latency is no measurement, and is flagged where samples are read."""
    from bench import store

    assert not store.impossible(-3.1, "memory_available_drop_per_instance")
    assert store.impossible(-3.1, "start_latency") and store.impossible(-3.1, "memory_pss_per_instance")
    assert store.impossible(float("inf"), "memory_available_drop_per_instance")
