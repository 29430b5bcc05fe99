"""The report's "Start-up and density" section: what an instance costs, per environment, in
absolute units (the host has no instance to be normalised to), from the density suite's
samples (bench/workloads/instances.py names the metrics).

Per environment: start latency as a distribution (p50, p95, max over every serial start of
every repetition), stop latency, the time to a first served request, and the host memory one
idle instance holds: PSS per instance at the largest number started at once, with its
interval over repetitions, the slope of the instances' summed PSS against their number (least
squares: MiB per extra instance), MemAvailable's drop beside it, and what that makes per GiB.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import stats
from ..workloads.instances import AVAILABLE_DROP, MAKESPAN, MEMORY_PER_INSTANCE, MEMORY_TOTAL, SERVED, START, STOP

N = "param_instances"  # how many were started at once: the sweep's column in bench.load()

# Published figures of the field, on their own hardware: shown as references, never measured here.
PUBLISHED = [
    ("Firecracker specification", "<= 5 MiB VMM memory overhead per microVM; <= 125 ms from the start call to "
     "the guest's /sbin/init; 150 microVMs created per second per host",
     "https://github.com/firecracker-microvm/firecracker/blob/main/SPECIFICATION.md"),
    ("Kata Containers density test", "PSS of every runtime component with N idle containers after KSM settles, "
     "MemAvailable's drop beside it", "https://github.com/kata-containers/tests/tree/main/metrics/density"),
    ("Kuasar benchmark", "memory overhead at 1-50 sandboxes (PSS of sandboxer and shims); start-up end to end, "
     "serially and 30 in parallel, 500 times, as a CDF",
     "https://github.com/kuasar-io/kuasar/blob/main/tests/benchmark/Benchmark.md"),
]


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys against xs (MiB per extra instance); NaN under two distinct xs."""
    if len(set(xs)) < 2:
        return math.nan
    return float(np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)[0])


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else math.nan


def section(df, envs: list[str], emulated: set[str], options: stats.Options = stats.Options(),
            summary=None) -> dict[str, Any] | None:
    """Rows per environment, the figures' jobs and the first screen's sentences; None when the
    run measured no instance."""
    if df.empty or not df["metric"].isin([START, MEMORY_PER_INSTANCE]).any():
        return None
    rows = []
    for env in envs:
        sub = df[df["environment"] == env]
        if sub.empty:
            continue
        # The serial starts (one at a time): the workloads that timed starts but never many at
        # once (no makespan); the sweep's own starts are in its figures against N.
        swept = set(sub.loc[sub["metric"] == MAKESPAN, "workload"])
        serial = sub[~sub["workload"].isin(swept)]
        starts = serial.loc[serial["metric"] == START, "value"].to_numpy(float)
        stops = serial.loc[serial["metric"] == STOP, "value"].to_numpy(float)
        served = serial.loc[serial["metric"] == SERVED, "value"].to_numpy(float)
        row: dict[str, Any] = {"environment": env, "emulated": env in emulated,
                               "start_n": len(starts), "start_values": starts.tolist(),
                               "start_p50": _pct(starts, 50), "start_p95": _pct(starts, 95),
                               "start_max": float(starts.max()) if len(starts) else math.nan,
                               "stop_p50": _pct(stops, 50),
                               "served_p50": _pct(served, 50), "served_p95": _pct(served, 95), "served_n": len(served),
                               "density_measured": bool(swept)}
        memory = sub[sub["metric"] == MEMORY_PER_INSTANCE]
        if len(memory):
            top = int(memory[N].max())
            at_top = memory.loc[memory[N] == top, "value"].to_numpy(float)
            d = stats.describe(at_top, options.confidence)
            total = sub[sub["metric"] == MEMORY_TOTAL]
            drop = sub[(sub["metric"] == AVAILABLE_DROP) & (sub[N] == top)]["value"].to_numpy(float)
            marginal = slope(total[N].astype(float).tolist(), total["value"].astype(float).tolist())
            per = marginal if math.isfinite(marginal) and marginal > 0 else d["mean"]
            row.update({"memory_n": top, "memory_mean": d["mean"], "memory_low": d["ci_low"],
                        "memory_high": d["ci_high"], "memory_reps": d["n"], "memory_slope": marginal,
                        "available_drop": float(np.mean(drop)) if len(drop) else math.nan,
                        "per_gib": 1024.0 / per if per and per > 0 else math.nan})
        rows.append(row)
    if not rows:
        return None
    points = sorted(int(n) for n in df.loc[df["metric"] == MAKESPAN, N].dropna().unique())
    jobs = [("start_cdf", ([r for r in rows if r["start_n"]], emulated,
                           "start latency, one instance at a time: every start of every repetition"),
             "start-latency CDF per environment (log time axis)"),
            ("instance_memory", ([r for r in rows if "memory_mean" in r], emulated,
                                 "host memory one idle instance holds (PSS, MiB; 95 % interval over repetitions)"),
             "memory per idle instance, absolute MiB")]
    if summary is not None and "sweep_instances" in summary:
        for metric, what in ((MEMORY_PER_INSTANCE, "MiB per idle instance (PSS)"),
                             (START, "start latency of each instance")):
            cells = summary[(summary["metric"] == metric) & summary["workload"].isin(df.loc[df["metric"] == MAKESPAN,
                                                                                          "workload"].unique())]
            if not cells.empty:
                jobs.append(("sweep", (cells, "instances", envs, None, emulated, f"{what} against instances started at once",
                                       True),
                             f"{what} against the number started at once: mean and 95 % interval over repetitions (log axis)"))
    return {"rows": rows, "points": points, "jobs": jobs, "published": PUBLISHED,
            "sentences": [sentence(r) for r in rows]}


def _s(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "–"
    if seconds < 0.1:
        return f"{seconds * 1000:.2g} ms"
    return f"{seconds:.3g} s" if seconds < 100 else f"{seconds:.0f} s"


def _mib(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.2g}"


def sentence(r: dict[str, Any]) -> str:
    """One line of the first screen: how fast an instance is ready, what it holds, how many fit."""
    mark = " (TCG, emulated: not a KVM figure)" if r["emulated"] else ""
    parts = [f"{r['environment']}{mark}: an instance starts in {_s(r['start_p50'])} "
             f"(p95 {_s(r['start_p95'])}, max {_s(r['start_max'])}, {r['start_n']} starts)"]
    if math.isfinite(r.get("stop_p50", math.nan)):
        parts.append(f"stops in {_s(r['stop_p50'])}")
    if r.get("served_n"):
        parts.append(f"answers a first Redis PING {_s(r['served_p50'])} after the request")
    if "memory_mean" in r:
        slope_text = (f", +{_mib(r['memory_slope'])} MiB per extra instance" if math.isfinite(r["memory_slope"])
                      and r["memory_slope"] > 0 else "")
        per = f": about {r['per_gib']:,.0f} per GiB of host memory" if math.isfinite(r["per_gib"]) else ""
        parts.append(f"and holds {_mib(r['memory_mean'])} MiB idle (PSS at {r['memory_n']} at once{slope_text}){per}")
    elif r["density_measured"]:  # started many at once, and no host process stayed to hold memory
        parts.append("and holds no memory idle (no process stays)")
    return ", ".join(p for p in parts if p) + "."
