"""`bench run` on the bare host with the real tools, end to end, as the README's main job runs it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bench
from bench import config
from bench.workloads import TOOLS

from conftest import ROOT, bench_cli, same_shapes_as_the_recorded_run, tools_of

pytestmark = pytest.mark.integration

TOOL_PROCESSES = {"fio", "sysbench", "hpcc", "mpirun", "netserver", "netperf", "xz", "redis-server",
                  "redis-benchmark", "mariadbd"}
QUICK = config.load().suite("quick").workloads


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One real run of the quick suite as shipped (its sizes and warm-ups), shared by the tests of
    this module. One repetition: a second runs the same code in the same place again (a run of
    several repetitions, and what stats make of them, is test_docker's and test_faults')."""
    out = tmp_path_factory.mktemp("results")
    scratch = tmp_path_factory.mktemp("scratch")
    r = bench_cli("run", "--suite", "quick", "--env", "host", "--reps", "1", "--out", str(out),
                  "--run-id", "quick-host", "--scratch", str(scratch), "--seed", "7")
    return r, out / "quick-host", scratch


def test_run_completes_and_reports(quick_run):
    r, run, _ = quick_run
    assert r.returncode == 0, r.stderr[-3000:]
    assert "complete" in r.stdout and "bench.load(" in r.stdout
    manifest = json.loads((run / "run.json").read_text())
    steps = len(QUICK) + sum(w["warmups"] for w in manifest["workloads"].values())
    # the outcome on the step's line, or on indented lines below it where it would pass 100 columns
    assert re.search(rf"\[\s*1/{steps}\] host · fio-randread-4k · warm-up 1 \.\.\. (\n    )?read_iops=.* left\]",
                     r.stderr)
    assert all(len(line) <= 100 for line in r.stderr.splitlines()), max(r.stderr.splitlines(), key=len)
    assert manifest["status"] == "complete"
    assert manifest["repetitions_done"] == len(QUICK)
    assert manifest["tool_seconds"] < manifest["wall_seconds"]


def test_samples_load_with_real_measurements(quick_run):
    _, run, _ = quick_run
    df = bench.load(run)
    assert set(df["environment"]) == {"host"} and set(df["repetition"]) == {1}

    assert set(df.workload) == set(QUICK)  # every workload kind of the quick suite measured something

    def values(workload, metric, **point):
        v = df[(df.workload == workload) & (df.metric == metric)]
        for column, value in point.items():
            v = v[v[column] == value]
        assert len(v) == 1, (workload, metric, point)
        return v

    randread = values("fio-randread-4k", "read_iops")
    assert (randread["value"] > 100).all() and (randread["param_iodepth"] == 16).all()
    assert (values("fio-seqread-1m", "read_bandwidth")["value"] > 1).all()
    assert (values("sysbench-cpu", "events_per_second")["value"] > 10).all()
    triad = values("hpcc", "stream_triad")
    assert (triad["value"] > 0.1).all() and (triad["unit"] == "GB/s").all()
    assert (values("hpcc", "hpl_gflops")["value"] > 0.1).all()
    assert (values("netperf-tcp-rr", "transactions_per_second")["value"] > 10).all()
    assert (values("netperf-tcp-rr", "latency_mean")["value"] > 0).all()
    assert (values("xz-compress", "compress_throughput")["value"] > 0.01).all()
    assert (values("xz-compress", "compression_ratio")["value"] > 2).all()
    assert (values("netperf-tcp-stream", "throughput_mbps")["value"] > 10).all()
    assert (values("netperf-tcp-stream", "cycles_per_byte")["value"] > 0).all()
    for clients in (1, 10, 50):  # every point of the sweep is a sample with its own column
        assert (values("redis", "get_requests_per_second", param_clients=clients)["value"] > 100).all()
    for threads in (1, 4, 8):
        assert (values("mariadb-oltp", "transactions_per_second", param_threads=threads)["value"] > 1).all()


def test_every_sample_traces_back_to_its_raw_output(quick_run):
    _, run, _ = quick_run
    manifest = json.loads((run / "run.json").read_text())
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    cells: dict[tuple[str, str, int], list[dict]] = {}
    for s in samples:
        cells.setdefault((s["environment"], s["workload"], s["repetition"]), []).append(s)
    for (env, workload, rep), rows in cells.items():
        tool = TOOLS[rows[0]["tool"]]
        raw = run / "raw" / env / workload / f"rep-{rep}.{tool.raw_suffix}"
        params = manifest["workloads"][workload]["params"]
        reparsed = tool.parse(raw.read_text(), tool.Params.model_validate(params))
        assert [(m.metric, m.value, {**params, **m.params}) for m in reparsed] == [
            (s["metric"], pytest.approx(s["value"]), s["params"]) for s in rows]
    # warm-ups are kept as raw output but never as samples
    assert (run / "raw" / "host" / "fio-randread-4k" / "warmup-1.json").exists()


def test_the_samples_have_the_shapes_of_the_main_jobs_recorded_run(quick_run):
    _, run, _ = quick_run
    same_shapes_as_the_recorded_run(run)


def test_metadata_records_host_and_tool_versions(quick_run):
    _, run, _ = quick_run
    manifest = json.loads((run / "run.json").read_text())
    host = manifest["host"]
    assert host["cpu_count"] == os.cpu_count() and host["kernel"] == os.uname().release
    versions = manifest["environments"]["host"]["tool_versions"]
    assert versions["fio"].startswith("fio-") and versions["sysbench"].startswith("sysbench")
    assert versions["hpcc"] and "netperf" in versions["netperf"].lower()
    assert manifest["client_tool_versions"]["netperf"]
    assert manifest["tool_version_mismatches"] == {}
    assert manifest["order_seed"] == 7
    assert manifest["workloads"]["fio-randread-4k"]["params"]["size"] == "256M"


def test_nothing_is_left_behind(quick_run):
    _, _, scratch = quick_run
    assert list(scratch.iterdir()) == []
    assert tools_of(scratch, TOOL_PROCESSES) == {}


@pytest.fixture
def broken_config(config_copy):
    """A hung tool, a crashing tool and a good one, in one suite."""
    (config_copy / "catalogue" / "broken.yaml").write_text(
        "sysbench-hangs:\n  tool: sysbench\n  warmups: 0\n  timeout: 1\n"
        "  params: {threads: 1, time: 30}\n"
        # valid parameters, but 64 jobs x 4096 in flight need more AIO contexts than the kernel's
        # fs.aio-max-nr (65536 by default): fio's io_queue_init fails, as a lab's limits can
        "fio-crashes:\n  tool: fio\n  warmups: 0\n  params: {rw: randread, bs: 4k, runtime: 1, size: 1M, iodepth: 4096, numjobs: 64}\n"
        "sysbench-short:\n  tool: sysbench\n  warmups: 0\n  params: {threads: 1, time: 1}\n")
    (config_copy / "suites" / "broken.yaml").write_text(
        "repetitions: 1\nworkloads: [sysbench-hangs, fio-crashes, sysbench-short]\n")
    return config_copy


def test_failed_and_hung_tools_are_recorded_and_the_run_goes_on(tmp_path, broken_config):
    r = bench_cli("--config-dir", str(broken_config), "run", "--suite", "broken", "--env", "host",
                  "--out", str(tmp_path), "--run-id", "broken", "--scratch", str(tmp_path / "scratch"))
    assert r.returncode == 1, r.stderr  # finished, but with failures
    run = tmp_path / "broken"
    failures = {f["workload"]: f for f in map(json.loads, (run / "failures.jsonl").read_text().splitlines())}
    assert failures["sysbench-hangs"]["reason"] == "timed out after 1 s"
    assert failures["fio-crashes"]["reason"].startswith("exit status ")
    # the tool's own words are kept (fio prints this one to its output, which is the raw file)
    assert "io_queue_init" in (run / failures["fio-crashes"]["raw"]).read_text() + failures["fio-crashes"]["stderr"]
    assert set(bench.load(run)["workload"]) == {"sysbench-short"}
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    assert "2 failed repetitions" in r.stdout
    assert tools_of(tmp_path / "scratch", TOOL_PROCESSES) == {}


def test_sigterm_mid_run_tears_down_and_keeps_finished_repetitions(tmp_path):
    scratch = tmp_path / "scratch"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "run", "--suite", "quick", "--env", "host",
                             "--reps", "3", "--out", str(tmp_path), "--run-id", "killed",
                             "--scratch", str(scratch)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples = tmp_path / "killed" / "samples.jsonl"
    deadline = time.monotonic() + 120
    while not (samples.exists() and samples.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert samples.exists(), "no repetition finished in time"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]   # 128 + SIGTERM
    assert "interrupted" in err
    manifest = json.loads((tmp_path / "killed" / "run.json").read_text())
    assert manifest["status"] == "interrupted"
    with pytest.warns(UserWarning, match="run is interrupted"):
        assert len(bench.load(tmp_path / "killed")) > 0
    assert list(scratch.iterdir()) == []
    time.sleep(0.5)
    assert tools_of(scratch, TOOL_PROCESSES) == {}


def test_a_tool_printing_garbage_is_recorded_as_unparsable(tmp_path, config_copy):
    """The one stand-in of these tests: a `sysbench` that exits 0 having printed nonsense, first
    on PATH, because no real tool can be made to do that on demand. The caller's PATH reaches a
    tool only when passed on explicitly (--pass-env): that is how it gets there."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "sysbench"
    fake.write_text("#!/bin/sh\necho 'sysbench 1.0.20'\necho 'events per second: lots'\nhead -c 200 /dev/urandom | base64\n")
    fake.chmod(0o755)
    (config_copy / "suites" / "garbage.yaml").write_text("repetitions: 1\nworkloads: [sysbench-cpu]\n")
    r = bench_cli("--config-dir", str(config_copy), "run", "--suite", "garbage", "--env", "host",
                  "--out", str(tmp_path), "--run-id", "garbage", "--scratch", str(tmp_path / "scratch"),
                  "--pass-env", "PATH", env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert r.returncode == 1, r.stderr
    failures = [json.loads(line) for line in (tmp_path / "garbage" / "failures.jsonl").read_text().splitlines()]
    assert {f["reason"] for f in failures} == {"unparsable output: no 'events per second' in sysbench's output"}
    raw = tmp_path / "garbage" / "raw" / "host" / "sysbench-cpu" / "rep-1.txt"
    assert "events per second: lots" in raw.read_text()  # the garbage is kept for a look


def test_a_tool_missing_on_the_host_is_named_before_anything_runs(tmp_path, config_copy):
    """xz taken off PATH (every other program of /usr/bin kept, by symlink; that PATH passed on
    to the tools with --pass-env, as the declared one has xz): the host's tools are
    checked when the run is planned, so the run stops at once with the package to install.
    (In a container or VM a missing program is a recorded failure of that cell instead.)"""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in Path("/usr/bin").iterdir():
        if program.name != "xz":
            (bin_dir / program.name).symlink_to(program)
    (config_copy / "suites" / "missing.yaml").write_text("repetitions: 1\nworkloads: [xz-compress, sysbench-cpu]\n")
    r = bench_cli("--config-dir", str(config_copy), "run", "--suite", "missing", "--env", "host",
                  "--out", str(tmp_path), "--run-id", "missing", "--scratch", str(tmp_path / "scratch"),
                  "--pass-env", "PATH", env={"PATH": f"{bin_dir}:/usr/sbin:/sbin"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "missing on this host: xz; install with `apt-get install xz-utils`" in r.stderr
    assert not (tmp_path / "missing").exists()  # nothing was made
