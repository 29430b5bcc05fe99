"""How long the report takes for a large results set: 100,800 synthetic samples.

Not part of the default test run (pytest collects tests/ only). Run it with
    .venv/bin/python -m pytest benchmarks/bench_report.py --benchmark-only
The shape is a lab-scale results set: 8 environments x 30 repetitions x 420 cells each, with
fio percentile sets (latency CDFs), two sweeps (Redis clients, MariaDB threads) and plain workloads.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.report import render_runs

ENVS = [("host", "host", {}), ("docker-nat", "docker", {"network": "nat"}),
        ("docker-host", "docker", {"network": "host"}), ("docker-overlay", "docker", {"storage": "overlay"}),
        ("kvm", "libvirt", {"accel": "tcg"}), ("kvm-tuned", "libvirt", {"accel": "tcg"}),
        ("kvm-qcow2", "libvirt", {"accel": "tcg"}), ("tcg", "libvirt", {"accel": "tcg"})]
PCTS = ["p1", "p5", "p10", "p20", "p30", "p40", "p50", "p60", "p70", "p80", "p90", "p95", "p99", "p99_5", "p99_9"]
REPS = 30


def cells():
    """(workload, tool, metric, unit, better, params, mean) for one environment: 420 cells."""
    out = []
    for i in range(12):   # fio-like: iops, bandwidth, clat mean and 15 percentiles, x 1 = 18 ... x 12 = 216
        w = f"fio-{i}"
        out += [(w, "fio", "read_iops", "IOPS", "higher", {}, 20000), (w, "fio", "read_bandwidth", "MiB/s", "higher", {}, 80),
                (w, "fio", "read_clat_mean", "us", "lower", {}, 600)]
        out += [(w, "fio", f"read_clat_{p}", "us", "lower", {}, 100 * (1 + k) ** 1.3) for k, p in enumerate(PCTS)]
    for c in (1, 5, 10, 20, 30, 40, 50):   # redis: 2 tests x 6 metrics x 7 points = 84
        for t in ("get", "set"):
            out += [("redis", "redis", f"{t}_requests_per_second", "req/s", "higher", {"clients": c}, 15000 * c ** 0.5)]
            out += [("redis", "redis", f"{t}_latency_{m}", "ms", "lower", {"clients": c}, 0.1 * c)
                    for m in ("mean", "p50", "p95", "p99", "max")]
    for th in range(10, 300, 20):   # mariadb: 4 metrics x 15 points = 60
        out += [("mariadb", "mariadb", m, u, b, {"threads": th}, v) for m, u, b, v in
                (("transactions_per_second", "trans/s", "higher", 1000), ("queries_per_second", "queries/s", "higher", 20000),
                 ("latency_avg", "ms", "lower", 10), ("latency_p95", "ms", "lower", 30))]
    for i in range(6):   # plain: 10 metrics each = 60
        out += [(f"plain-{i}", "hpcc", f"metric_{j}", "GB/s", "higher", {}, 10.0 + j) for j in range(10)]
    return out


@pytest.fixture(scope="module")
def big_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big") / "big-run"
    (folder / "raw").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for e, (env, kind, variant) in enumerate(ENVS):
        for w, tool, metric, unit, better, params, mean in cells():
            for rep in range(1, REPS + 1):
                value = mean * (1 - 0.03 * e) * rng.normal(1, 0.04)
                lines.append(json.dumps({"run_id": "big-run", "environment": env, "env_kind": kind, "workload": w,
                                         "tool": tool, "metric": metric, "unit": unit, "value": value, "better": better,
                                         "repetition": rep, "timestamp": 0.0, "params": {"bs": "4k", **params},
                                         "variant": variant}))
    (folder / "samples.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "run.json").write_text(json.dumps({
        "format_version": 1, "run_id": "big-run", "status": "complete", "suite": "synthetic", "profile": "lab",
        "repetitions": REPS, "environment_order": [e[0] for e in ENVS], "samples": len(lines),
        "environments": {n: {"kind": k, "variant_as_run": v, "metadata": {"accel": v.get("accel", "")}} for n, k, v in ENVS}}))
    return folder, len(lines)


def test_render_100k_samples(benchmark, big_run, tmp_path):
    folder, n = big_run
    assert n >= 100_000
    out = tmp_path / "big.html"
    benchmark.pedantic(render_runs, args=([folder], out), rounds=1, iterations=1)
    html = out.read_text()
    # bars (12 fio + 6 plain), 12 latency CDFs, sweeps: redis GET and SET req/s, mariadb trans/s
    assert html.count("data:image/png;base64,") == 18 + 12 + 3
    benchmark.extra_info.update(samples=n, html_mib=round(len(html) / 2**20, 1))
