"""Parity: every tool runs under the declared execution context, and a run proves it.

The caller's OPENBLAS_CORETYPE once made HPL look 44 % faster in Docker than on the host: the host's
tools inherited it, the container's did not. These tests set such variables in the caller's
environment and check, from what the tools themselves saw, that none reaches them anywhere.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bench import parity
from bench.environments.context import LIMITS, ExecutionContext, memory_policy, numa_nodes
from bench.environments.docker import DockerEnvironment
from bench.environments.host import HostEnvironment
from bench.environments.libvirt import LibvirtEnvironment

from conftest import DATA, bench_cli, short_tools

LEAKS = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "512", "BENCH_TEST_LEAK": "1"}
RECORDED = json.loads((DATA / "context" / "run-host-docker-nat.json").read_text())


def test_wrap_gives_exactly_the_declared_variables():
    argv = ExecutionContext().wrap(["fio", "--version"], "/work")
    assert argv[:2] == ["/usr/bin/env", "-i"]
    assert argv[-2:] == ["fio", "--version"]
    assert "HOME=/work" in argv and "LC_ALL=C.UTF-8" in argv and "TZ=UTC" in argv
    passed = ExecutionContext.passing(["MY_VAR", "NOT_SET"], {"MY_VAR": "x"})
    assert "MY_VAR=x" in passed.wrap(["true"], "/w") and passed.passed == (("MY_VAR", "x"),)


def test_cpu_tests_interleave_memory_only_where_there_are_nodes(tmp_path):
    """The study ran its CPU and memory tests under numactl --interleave=0,1: every node of its two."""
    argv = ExecutionContext(interleave=True).wrap(["hpcc"], "/w")
    assert argv[-3:] == ["numactl", "--interleave=all", "hpcc"]
    from bench.environments import KINDS

    shares = {kind: cls.shares_host_memory for kind, cls in KINDS.items()}
    assert shares["host"] and shares["docker"] and shares["swarm"] and shares["compose"] and shares["podman"]
    assert not shares["libvirt"]                    # a guest: libvirt's numatune does it
    assert memory_policy(True, shares["host"], 2) and memory_policy(True, shares["docker"], 2)
    assert not memory_policy(True, shares["host"], 1)       # one node: nothing to interleave
    assert not memory_policy(False, shares["host"], 2)      # not a CPU test (netperf, fio)
    assert not memory_policy(True, shares["libvirt"], 2)
    for node in ("node0", "node1", "possible"):
        (tmp_path / node).mkdir()
    assert numa_nodes(str(tmp_path)) == 2 and numa_nodes(str(tmp_path / "none")) == 1
    from bench.environments.domain import domain_xml
    from bench.environments.libvirt import LibvirtVariant, domain_spec
    from bench.environments.topology import HostTopology
    spec = domain_spec("bench-r-x", "r", "x", LibvirtVariant(), "kvm", HostTopology.uniform(2, 2, 1),
                       "/k", "/i", "/r", "/d", "/c", (), numa_nodes=2)
    assert '<memory mode="interleave" nodeset="0-1" />' in domain_xml(spec)


def test_programs_are_looked_up_on_the_tools_path_not_benchs(tmp_path, monkeypatch):
    """A caller's PATH without xz does not hide the xz the tools run; passed on, it does."""
    monkeypatch.setenv("PATH", str(tmp_path))
    assert HostEnvironment.has_program_here("xz", ExecutionContext().path)
    assert not HostEnvironment.has_program_here("xz", ExecutionContext.passing(["PATH"]).path)


@pytest.fixture
def host(monkeypatch, tmp_path):
    for k, v in LEAKS.items():
        monkeypatch.setenv(k, v)
    env = HostEnvironment("host", {}, "paritytest")
    env.provision(str(tmp_path), 0)
    yield env
    env.teardown()


def test_host_tools_see_nothing_of_the_caller(host):
    r = host.exec(["sh", "-c", "env; echo umask=$(umask); echo nofile=$(ulimit -n); echo pwd=$(pwd)"], timeout=30)
    assert r.ok, r.stderr
    seen = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert not set(LEAKS) & set(seen), seen
    assert seen["HOME"] == host.workdir and seen["pwd"] == host.workdir
    assert seen["umask"] == "0022" and seen["nofile"] == str(LIMITS["nofile"])


@pytest.mark.integration
def test_probe_sees_the_blas_kernel_the_tool_would(host):
    """The probe loads hpcc's OpenBLAS in the tools' context: the caller's Haswell does not
    reach it, and the same variable passed on explicitly does."""
    plain = parity.measure(host, ["hpcc"])
    assert plain["blas_core"] and "OPENBLAS_CORETYPE" not in str(plain)
    assert plain["binary.hpcc"] == parity.measure(host, ["hpcc"])["binary.hpcc"]
    assert any(k.startswith("library.libopenblas") or k.startswith("library.libblas") for k in plain)
    host.context = ExecutionContext.passing(["OPENBLAS_CORETYPE"])
    passed = parity.measure(host, ["hpcc"])
    assert passed["blas_core"] == "Haswell" and passed["env.OPENBLAS_CORETYPE"] == "Haswell"
    blocking = [d for d in parity.compare(plain, passed, DockerEnvironment, DockerEnvironment.Variant()) if d.blocking]
    assert {d.key for d in blocking} == {"blas_core", "env.OPENBLAS_CORETYPE"}


def test_compare_classifies_a_recorded_pair():
    """A real run's contexts (host and docker-nat, recorded): equal; planted changes are
    unintended, a guest's own kernel and a --cpus quota intended."""
    native = RECORDED["execution_context"]["host"]
    docker = RECORDED["execution_context"]["docker-nat"]
    assert parity.compare(native, docker, DockerEnvironment, DockerEnvironment.Variant.model_validate({"network": "nat"})) == []
    planted = {**docker, "env.MALLOC_ARENA_MAX": "2", "binary.sysbench": "0" * 64}
    found = {d.key: d for d in parity.compare(native, planted, DockerEnvironment, DockerEnvironment.Variant.model_validate({"network": "nat"}))}
    assert set(found) == {"env.MALLOC_ARENA_MAX", "binary.sysbench"} and all(d.blocking for d in found.values())
    assert "--pass-env MALLOC_ARENA_MAX" in parity.fix(found["env.MALLOC_ARENA_MAX"])
    quota = {**docker, "cgroup_cpu_quota": "50000 100000"}
    (d,) = parity.compare(native, quota, DockerEnvironment, DockerEnvironment.Variant.model_validate({"cpus": 0.5}))
    assert d.intended == "--cpus 0.5" and not d.blocking
    guest = {**docker, "kernel_release": "6.1.0-cloud-amd64", "cpu_flags": "fpu sse2", "blas_core": "Prescott"}
    found = {d.key: d for d in parity.compare(native, guest, LibvirtEnvironment, LibvirtEnvironment.Variant.model_validate({"accel": "tcg"}))}
    assert not any(d.blocking for d in found.values()) and "TCG" in found["blas_core"].intended
    # The same BLAS change with the same CPU flags has no excuse.
    (d,) = parity.compare(native, {**docker, "blas_core": "Prescott"}, LibvirtEnvironment, LibvirtEnvironment.Variant())
    assert d.blocking


@pytest.fixture
def parity_suite(config_copy: Path) -> Path:
    short_tools(config_copy)  # what is asked is the context the tools ran in, not their numbers
    (config_copy / "suites" / "parity.yaml").write_text(
        "description: parity checks\nprofile: quick\nrepetitions: 1\nworkloads: [sysbench-cpu, hpcc]\n")
    (config_copy / "suites" / "parity-cpu.yaml").write_text(
        "description: parity checks\nprofile: quick\nrepetitions: 1\nworkloads: [sysbench-cpu]\n")
    return config_copy


@pytest.mark.integration
def test_run_on_host_and_docker_ignores_the_callers_variables(parity_suite, tmp_path, docker_client):
    r = bench_cli("--config-dir", str(parity_suite), "run", "--suite", "parity", "--env", "host,docker-nat",
                  "--out", str(tmp_path), "--run-id", "parity-clean", env=LEAKS)
    assert r.returncode == 0, r.stderr
    assert "parity: every environment runs the tools as native does" in r.stderr
    manifest = json.loads((tmp_path / "parity-clean" / "run.json").read_text())
    contexts = manifest["execution_context"]
    for name in ("host", "docker-nat"):
        assert not {k for k in contexts[name] if k[4:] in LEAKS}, name
        assert contexts[name]["env.PATH"].startswith("/usr/local/sbin")
    assert contexts["host"]["blas_core"] == contexts["docker-nat"]["blas_core"] != ""
    assert contexts["host"]["binary.hpcc"] == contexts["docker-nat"]["binary.hpcc"]
    assert not any(d["blocking"] for d in manifest["parity"]["docker-nat"])
    samples = [json.loads(line) for line in (tmp_path / "parity-clean" / "samples.jsonl").read_text().splitlines()]
    assert {s["parity_ok"] for s in samples if s["workload"] != "provision"} == {True}
    # this host has one NUMA node: nothing is interleaved, and run.json says so and why
    policy = manifest["declared_context"]["memory_policy"]
    assert policy["numa_nodes"] == numa_nodes() and (policy["interleaved"] == []) == (numa_nodes() == 1)
    html = (tmp_path / "parity-clean" / "report.html").read_text()
    assert 'id="parity"' in html and html.index('id="parity"') < html.index('id="summary"')


@pytest.fixture
def shadowed_sysbench():
    """A sysbench in /usr/local/bin (first on the declared PATH) on the host only: Debian's
    binary with one byte appended, so it runs the same but is another file than the image's."""
    shadow = Path("/usr/local/bin/sysbench")
    if shadow.exists():
        pytest.skip(f"{shadow} exists on this machine already")
    shadow.write_bytes(Path(shutil.which("sysbench", path="/usr/bin")).read_bytes() + b"\0")
    shadow.chmod(0o755)
    yield shadow
    shadow.unlink()


# `alone`: the sysbench planted in /usr/local/bin is every host run's while it is there.
@pytest.mark.alone
@pytest.mark.integration
def test_a_planted_difference_is_refused_then_marked(parity_suite, tmp_path, docker_client, shadowed_sysbench):
    args = ("--config-dir", str(parity_suite), "run", "--suite", "parity-cpu", "--env", "host,docker-nat",
            "--out", str(tmp_path))
    r = bench_cli(*args, "--run-id", "parity-refused")
    assert r.returncode == 2, r.stderr
    error = [line for line in r.stderr.splitlines() if line.startswith("bench: error:")]
    assert len(error) == 1 and "parity: docker-nat: binary.sysbench" in error[0] and "--allow-mismatch" in error[0]
    folder = tmp_path / "parity-refused"
    samples = (folder / "samples.jsonl").read_text() if (folder / "samples.jsonl").exists() else ""
    assert "sysbench-cpu" not in samples and json.loads((folder / "run.json").read_text())["status"] == "failed"
    assert not docker_client.containers.list(all=True, filters={"label": "bench.run_id=parity-refused"})

    r = bench_cli(*args, "--run-id", "parity-allowed", "--allow-mismatch")
    assert r.returncode == 0, r.stderr
    assert "UNINTENDED difference, measuring anyway" in r.stderr
    samples = [json.loads(line) for line in (tmp_path / "parity-allowed" / "samples.jsonl").read_text().splitlines()]
    marks = {(s["environment"], s["parity_ok"]) for s in samples if s["workload"] == "sysbench-cpu"}
    assert marks == {("host", True), ("docker-nat", False)}
    html = (tmp_path / "parity-allowed" / "report.html").read_text()
    assert "binary.sysbench" in html and html.count('class="mismatch"') >= 3


def test_report_says_faster_than_native_in_words(tmp_path):
    """The recorded run's manifest, with five repetitions of sysbench-cpu where docker-nat is
    planted 20 % faster than the host (what a leaked variable looked like): the summary says so
    in words, and does not colour it as a win."""
    from bench.model import Sample
    from bench.report import build, render

    folder = tmp_path / "planted"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({**RECORDED, "status": "complete"}))
    rows = []
    for rep in range(1, 6):
        for env, kind, value in (("host", "host", 2740 + rep), ("docker-nat", "docker", 3290 - rep)):
            rows.append(Sample("planted", env, kind, "sysbench-cpu", "sysbench", "events_per_second", "events/s",
                               float(value), "higher", rep, parity_ok=True).to_json())
    (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    context = build([folder])
    (row,) = [r for w in context["workloads"] for r in w["summary"]]
    assert row["implausible"] and row["significant"]
    html = render(context)
    assert "faster than native: check the Parity section" in html
    # the first screen says it in words, in its bottom line and in the matrix's CPU cell
    glance = html[html.index('id="glance"'):html.index("</section>")]
    clause = re.search(r"docker-nat beats native on CPU \(([\d.]+) % faster, sysbench-cpu\): "
                       r"not plausible for CPU or memory work", glance)
    assert clause, glance[:3000]
    assert 15 < float(clause.group(1)) < 25   # planted: about 20 % faster
    assert '<div class="implausible">not plausible for CPU or memory work: see Parity</div>' in glance
    assert html.index('id="parity"') < html.index('id="summary"') and "same as native" in html


def test_report_says_a_direct_read_faster_than_native_is_a_cache(tmp_path):
    """fio with direct I/O planted 2.5 times faster in one environment (what gVisor's volume
    gives: O_DIRECT not honoured): the first screen names it a cache on the path, not a win."""
    from bench.model import Sample
    from bench.report import build, render

    folder = tmp_path / "cached"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({**RECORDED, "status": "complete"}))
    params = {"bs": "1M", "direct": True, "rw": "read"}
    rows = []
    for rep in range(1, 6):
        for env, kind, value in (("host", "host", 1400 + rep), ("docker-nat", "docker", 3500 - rep)):
            rows.append(Sample("cached", env, kind, "fio-seqread-1m", "fio", "read_bandwidth", "MiB/s",
                               float(value), "higher", rep, params=params, parity_ok=True).to_json())
    (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    context = build([folder])
    (row,) = [r for w in context["workloads"] for r in w["summary"]]
    assert row["implausible"] and row["significant"]
    html = render(context)
    glance = html[html.index('id="glance"'):html.index("</section>")]
    assert re.search(r"docker-nat beats native on disk \([^)]*faster, fio-seqread-1m\): not plausible for direct I/O: "
                     r"a cache on the path, not the disk", glance), glance[:3000]
