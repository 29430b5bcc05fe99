"""A synthetic lab-scale results set for timing the report (no tool runs).

The shape: 8 environments x REPS repetitions x 420 cells each, with fio percentile sets (latency
CDFs), two sweeps (Redis clients, MariaDB threads) and plain workloads. `write_run(folder, n)`
picks the number of repetitions so that there are at least n samples: 30 repetitions = 100,800.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

ENVS = [("host", "host", {}), ("docker-nat", "docker", {"network": "nat"}),
        ("docker-host", "docker", {"network": "host"}), ("docker-overlay", "docker", {"storage": "overlay"}),
        ("kvm", "libvirt", {"accel": "tcg"}), ("kvm-tuned", "libvirt", {"accel": "tcg"}),
        ("kvm-qcow2", "libvirt", {"accel": "tcg"}), ("tcg", "libvirt", {"accel": "tcg"})]
PCTS = ["p1", "p5", "p10", "p20", "p30", "p40", "p50", "p60", "p70", "p80", "p90", "p95", "p99", "p99_5", "p99_9"]
# What the report must contain for this shape: bars (12 fio + 6 plain), 12 latency CDFs, the
# sweeps' figures (redis GET and SET req/s, mariadb trans/s) and the first screen's overview.
EXPECTED_FIGURES = 18 + 12 + 3 + 1


def cells():
    """(workload, tool, metric, unit, better, params, mean) for one environment: 420 cells."""
    out = []
    for i in range(12):   # fio-like: iops, bandwidth, clat mean and 15 percentiles = 18, x 12 = 216
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


def repetitions_for(samples: int) -> int:
    return max(2, math.ceil(samples / (len(ENVS) * len(cells()))))


def write_run(folder: Path, samples: int, seed: int = 0) -> int:
    """Write a complete run folder with at least `samples` samples; returns how many."""
    folder = Path(folder)
    (folder / "raw").mkdir(parents=True, exist_ok=True)
    reps = repetitions_for(samples)
    rng = np.random.default_rng(seed)
    n = 0
    with open(folder / "samples.jsonl", "w") as f:
        for e, (env, kind, variant) in enumerate(ENVS):
            for w, tool, metric, unit, better, params, mean in cells():
                for rep in range(1, reps + 1):
                    value = mean * (1 - 0.03 * e) * rng.normal(1, 0.04)
                    f.write(json.dumps({"run_id": folder.name, "environment": env, "env_kind": kind, "workload": w,
                                        "tool": tool, "metric": metric, "unit": unit, "value": value,
                                        "better": better, "repetition": rep, "timestamp": 0.0,
                                        "params": {"bs": "4k", **params}, "variant": variant}) + "\n")
                    n += 1
    (folder / "run.json").write_text(json.dumps({
        "format_version": 1, "run_id": folder.name, "status": "complete", "suite": "synthetic", "profile": "lab",
        "repetitions": reps, "environment_order": [e[0] for e in ENVS], "samples": n,
        "environments": {name: {"kind": k, "variant_as_run": v, "metadata": {"accel": v.get("accel", "")}}
                         for name, k, v in ENVS}}))
    return n
