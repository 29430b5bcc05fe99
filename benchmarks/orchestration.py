"""Orchestration overhead: the share of a run's wall time spent outside the tools,
(wall - tool) / wall, from run.json's wall_seconds and tool_seconds (the sum of every tool
command's duration, warm-ups included). Target: under 10 % for the quick suite with the image
built. And how it grows with the number of cells: suites of 1, 4 and 16 tiny sysbench cells
(time=1 s, no warm-up) on the host.

Two views: run.json's (provision to teardown, what the runner measures) and the outside one
(the `bench run` process from start to exit: Python start-up, planning and the report too).
"""

from __future__ import annotations

import shutil

from .common import bench_run, manifest, private_config, verdict

TARGET = 0.10


def _overhead(folder, outside: float) -> dict:
    m = manifest(folder)
    wall, tool = m["wall_seconds"], m["tool_seconds"]
    return {"wall_seconds": wall, "tool_seconds": tool, "outside_seconds": round(outside, 3),
            "overhead": (wall - tool) / wall, "overhead_outside": (outside - tool) / outside,
            "samples": m.get("samples"), "status": m.get("status")}


def quick_suite(envs: list[str], reps: int | None = None) -> list[dict]:
    cfg = private_config({})
    results = []
    try:
        for env in envs:
            extra = ["--reps", str(reps)] if reps else []
            folder, outside = bench_run(cfg, "quick", env, cfg / "results", *extra, timeout=3600)
            r = {"benchmark": f"orchestration quick suite on {env}", **_overhead(folder, outside),
                 "reps": reps or "suite's", "target": "< 10 %"}
            r["met"] = r["overhead"] < TARGET
            results.append(r)
            print(f"  quick suite on {env}: wall {r['wall_seconds']:.1f} s, in tools {r['tool_seconds']:.1f} s: "
                  f"overhead {r['overhead']:.1%} (outside view, with start-up and report: "
                  f"{r['overhead_outside']:.1%}) - target < 10 % {verdict(r['met'])}", flush=True)
    finally:
        shutil.rmtree(cfg, ignore_errors=True)
    return results


def scaling(sizes: tuple[int, ...] = (1, 4, 16), seconds: int = 1) -> list[dict]:
    catalogue = {f"bm-sysbench-{i}": {"tool": "sysbench", "description": "benchmarks/: a tiny cell", "warmups": 0,
                                      "params": {"time": seconds, "cpu_max_prime": 2000, "threads": 1}}
                 for i in range(max(sizes))}
    cfg = private_config({f"bm-cells-{n}": [f"bm-sysbench-{i}" for i in range(n)] for n in sizes}, catalogue)
    results = []
    try:
        for n in sizes:
            folder, outside = bench_run(cfg, f"bm-cells-{n}", "host", cfg / "results", "--reps", "1")
            r = {"benchmark": f"orchestration {n} sysbench cells of {seconds} s", "cells": n, **_overhead(folder, outside)}
            r["per_cell_seconds"] = (r["wall_seconds"] - r["tool_seconds"]) / n
            results.append(r)
            print(f"  {n:>2} cells: wall {r['wall_seconds']:.2f} s, in tools {r['tool_seconds']:.2f} s, "
                  f"overhead {r['overhead']:.1%} ({r['per_cell_seconds']:.2f} s per cell; outside view "
                  f"{r['outside_seconds']:.2f} s, {r['overhead_outside']:.1%})", flush=True)
    finally:
        shutil.rmtree(cfg, ignore_errors=True)
    return results
