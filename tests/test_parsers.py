"""Parsers against outputs recorded from the real tools on a Debian 12 machine."""

from __future__ import annotations

import pytest

from bench.errors import ToolError
from bench.workloads import TOOLS
from bench.model import SAMPLE_FIELDS

from conftest import params, recorded

# The recorded random read's own job: 4 KiB blocks at queue depth 16 for 5 s.
RANDREAD = params("fio", rw="randread", bs="4k", iodepth=16, runtime=5)


def by_metric(measurements):
    return {m.metric: m for m in measurements}


def test_fio_random_read_reports_iops_bandwidth_and_latency_percentiles():
    ms = by_metric(TOOLS["fio"].parse(recorded("fio", "randread-4k-qd16.json"), RANDREAD))
    assert ms["read_iops"].value == pytest.approx(15966.406719)
    assert ms["read_iops"].unit == "IOPS" and ms["read_iops"].better == "higher"
    assert ms["read_bandwidth"].value == pytest.approx(63865 / 1024)
    assert ms["read_clat_mean"].value == pytest.approx(952.283471333)
    assert ms["read_clat_mean"].better == "lower"
    # fio's percentile keys become metric names: "99.900000" -> p99_9; values ns -> us
    assert ms["read_clat_p99_9"].unit == "us"
    assert ms["read_clat_p1"].value == pytest.approx(244.736)
    assert not any(m.startswith("write_") for m in ms)  # a read job did no writes


def test_fio_sequential_read_headline_is_bandwidth():
    ms = TOOLS["fio"].parse(recorded("fio", "seqread-1m-qd1.json"), params("fio", rw="read", bs="1M", runtime=5))
    assert ms[0].metric == "read_bandwidth"
    assert ms[0].value == pytest.approx(756789 / 1024)


def test_fio_json_after_notes_is_found():
    text = "note: both iodepth >= 1 and synchronous I/O engine are selected\n" + recorded(
        "fio", "randread-4k-qd16.json")
    assert by_metric(TOOLS["fio"].parse(text, RANDREAD))["read_iops"].value > 0


def test_fio_mixed_job_headline_is_total_iops():
    mixed = params("fio", rw="randrw", bs="4k", iodepth=32, numjobs=8, runtime=3, rwmixread=70)
    ms = by_metric(TOOLS["fio"].parse(recorded("fio", "randrw-70-30-4k-qd32-8jobs.json"), mixed))
    assert ms["total_iops"].value == pytest.approx(ms["read_iops"].value + ms["write_iops"].value)
    assert 0.65 < ms["read_iops"].value / ms["total_iops"].value < 0.75  # rwmixread=70
    assert ms["write_clat_p99"].better == "lower"


def test_fio_eight_jobs_sum_their_runtime():
    eight = params("fio", rw="randwrite", bs="4k", iodepth=16, numjobs=8, runtime=3)
    ms = TOOLS["fio"].parse(recorded("fio", "randwrite-4k-qd16-8jobs.json"), eight)
    assert ms[0].metric == "write_iops" and ms[0].value == pytest.approx(38752.2, rel=1e-4)


def test_fio_fill_is_not_time_based():
    fill = params("fio", rw="write", bs="1M", iodepth=16, time_based=False, runtime=60)
    ms = TOOLS["fio"].parse(recorded("fio", "seqwrite-fill-1m-qd16.json"), fill)
    assert ms[0].metric == "write_bandwidth" and ms[0].unit == "MiB/s"


def test_fio_stopped_early_is_a_partial_run():
    # SIGTERM after 2 s of a 30 s run: fio still writes a well-formed document.
    text = recorded("fio", "randread-4k-sigterm-after-2s.json")
    with pytest.raises(ToolError, match="partial"):
        TOOLS["fio"].parse(text, params("fio", rw="randread", bs="4k", iodepth=16, runtime=30))


@pytest.mark.parametrize("text", ["", "fio: failed parsing directory=/nonexistent/dir\n", "{ truncated"])
def test_fio_failed_or_garbled_output_raises(text):
    with pytest.raises(ToolError):
        TOOLS["fio"].parse(text, RANDREAD)


def test_sysbench_cpu():
    ms = by_metric(TOOLS["sysbench"].parse(recorded("sysbench", "cpu-2threads.txt"), params("sysbench")))
    assert ms["events_per_second"].value == pytest.approx(2536.24)
    assert ms["latency_avg"].value == pytest.approx(0.79) and ms["latency_avg"].unit == "ms"
    assert ms["latency_p95"].value == pytest.approx(0.90)


def test_sysbench_rejected_option_raises():
    with pytest.raises(ToolError, match="events per second"):
        TOOLS["sysbench"].parse(recorded("sysbench", "cpu-bad-option.txt"), params("sysbench"))


def test_hpcc_summary_gives_hpl_stream_and_gups():
    ms = by_metric(TOOLS["hpcc"].parse(recorded("hpcc", "hpccoutf-n4000-np2.txt"), params("hpcc", processes=2)))
    assert ms["hpl_gflops"].value == pytest.approx(57.117)
    # STREAM is the whole machine's: the per-rank "Star" figure times the 2 ranks
    assert ms["stream_triad"].value == pytest.approx(13.2685 * 2)
    assert ms["stream_copy"].value == pytest.approx(11.7273 * 2)
    assert ms["stream_triad_single"].value == pytest.approx(21.365)
    assert ms["randomaccess_gups"].value == pytest.approx(0.0134065)
    assert ms["randomaccess_gups_single"].value == pytest.approx(0.0745947)


def test_hpcc_killed_midway_has_no_summary():
    with pytest.raises(ToolError, match="no summary"):
        TOOLS["hpcc"].parse(recorded("hpcc", "hpccoutf-killed.txt"), params("hpcc"))


def test_hpcc_failed_verification_raises():
    text = recorded("hpcc", "hpccoutf-n4000-np2.txt").replace("Success=1", "Success=0")
    with pytest.raises(ToolError, match="Success=0"):
        TOOLS["hpcc"].parse(text, params("hpcc"))


def test_netperf_tcp_rr():
    ms = by_metric(TOOLS["netperf"].parse(recorded("netperf", "tcp-rr-keyval.txt"), params("netperf")))
    assert ms["transactions_per_second"].value == pytest.approx(2722.67)
    assert ms["latency_mean"].value == pytest.approx(366.99) and ms["latency_mean"].better == "lower"
    assert ms["latency_p99"].value == pytest.approx(1196)


def test_netperf_without_server_raises():
    with pytest.raises(ToolError):
        TOOLS["netperf"].parse(recorded("netperf", "no-netserver.txt"), params("netperf"))


def test_netperf_garbage_raises():
    with pytest.raises(ToolError):
        TOOLS["netperf"].parse("THROUGHPUT=fast\n", params("netperf"))


def test_no_parameter_shadows_a_sample_column():
    # bench.load() flattens parameters into columns beside the sample fields.
    for tool in TOOLS.values():
        assert not set(tool.Params.model_fields) & set(SAMPLE_FIELDS), tool.tool


def test_xz_throughput_ratio_and_time():
    ms = by_metric(TOOLS["xz"].parse(recorded("xz", "host-8mib-2threads.txt"), params("xz", corpus_mib=8, threads=2)))
    assert ms["compress_throughput"].value == pytest.approx(8388688 / 27.978390754 / 1e6)
    assert ms["compress_throughput"].unit == "MB/s" and ms["compress_throughput"].better == "higher"
    assert ms["compression_ratio"].value == pytest.approx(8388688 / 2440012)
    assert ms["compress_seconds"].better == "lower"


def test_xz_killed_midway_raises():
    with pytest.raises(ToolError, match="incomplete"):
        TOOLS["xz"].parse(recorded("xz", "killed-after-2s.txt"), params("xz"))


def test_xz_corpus_is_the_same_bytes_every_time(tmp_path):
    """The corpus generator is deterministic: the same seed and size give the recorded digest."""
    import hashlib
    import subprocess
    from bench.workloads.xz import CORPUS_AWK
    (tmp_path / "c.awk").write_text(CORPUS_AWK)
    out = subprocess.run(["mawk", "-v", "seed=2014", "-v", f"bytes={8 * 1024 * 1024}", "-f", str(tmp_path / "c.awk")],
                         capture_output=True, check=True).stdout
    recorded_digest = dict(line.split("=", 1) for line in recorded("xz", "host-8mib-2threads.txt").splitlines())
    assert hashlib.sha256(out).hexdigest() == recorded_digest["corpus_sha256"]


def test_sysbench_threads_rate_from_events_and_time():
    ms = by_metric(TOOLS["sysbench"].parse(recorded("sysbench", "threads-2threads.txt"), params("sysbench", test="threads")))
    assert ms["events_per_second"].value == pytest.approx(3321 / 5.0006)
    assert ms["latency_p95"].unit == "ms" and ms["latency_p95"].better == "lower"


def test_sysbench_mutex_reports_total_time():
    ms = by_metric(TOOLS["sysbench"].parse(recorded("sysbench", "mutex-2threads.txt"), params("sysbench", test="mutex")))
    assert ms["total_time"].value == pytest.approx(0.2901) and ms["total_time"].better == "lower"
    assert "events_per_second" not in ms


def test_sysbench_threads_rejected_option_raises():
    with pytest.raises(ToolError, match="total time"):
        TOOLS["sysbench"].parse(recorded("sysbench", "threads-bad-option.txt"), params("sysbench", test="threads"))


def test_sysbench_argv_per_test():
    argv = TOOLS["sysbench"].argv
    assert argv(params("sysbench", test="threads", threads=2, time=3)) == [
        "sysbench", "threads", "--threads=2", "--time=3", "--thread-yields=1000", "--thread-locks=8", "run"]
    assert argv(params("sysbench", test="mutex", threads=2))[:3] == ["sysbench", "mutex", "--threads=2"]
    assert not any(a.startswith("--time") for a in argv(params("sysbench", test="mutex", threads=2)))
