"""Orchestration overhead: the share of a run's wall time spent outside the tools,
(wall - tool) / wall, from run.json's wall_seconds and tool_seconds (the sum of every tool
command's duration, warm-ups included). Target: under 10 % for the quick suite with the image
built. And how it grows with the number of cells: suites of 1, 2, 4 and 8 tiny sysbench cells
(time=1 s, no warm-up) on the host and in Docker (NAT and host networking), with the fixed and
the per-cell part fitted.

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


def scaling(envs: list[str] = ("host",), sizes: tuple[int, ...] = (1, 2, 4, 8), seconds: int = 1) -> list[dict]:
    """Suites of 1, 2, 4, 8 tiny sysbench cells per environment: the overhead per cell is the
    slope, the fixed cost (provisioning: a container's start) the intercept."""
    catalogue = {f"bm-sysbench-{i}": {"tool": "sysbench", "description": "benchmarks/: a tiny cell", "warmups": 0,
                                      "params": {"time": seconds, "cpu_max_prime": 2000, "threads": 1}}
                 for i in range(max(sizes))}
    cfg = private_config({f"bm-cells-{n}": [f"bm-sysbench-{i}" for i in range(n)] for n in sizes}, catalogue)
    results = []
    try:
        for env in envs:
            mine = []
            for n in sizes:
                folder, outside = bench_run(cfg, f"bm-cells-{n}", env, cfg / "results", "--reps", "1")
                r = {"benchmark": f"orchestration {n} sysbench cells of {seconds} s on {env}", "environment": env,
                     "cells": n, **_overhead(folder, outside)}
                r["per_cell_seconds"] = (r["wall_seconds"] - r["tool_seconds"]) / n
                mine.append(r)
                print(f"  {env:>12}, {n:>2} cells: wall {r['wall_seconds']:.2f} s, in tools {r['tool_seconds']:.2f} s, "
                      f"overhead {r['overhead']:.1%} ({r['per_cell_seconds']:.2f} s per cell; outside view "
                      f"{r['outside_seconds']:.2f} s, {r['overhead_outside']:.1%})", flush=True)
            if len(mine) >= 2:
                # Least squares of (wall - tools) on the number of cells: what each more cell costs.
                xs = [r["cells"] for r in mine]
                ys = [r["wall_seconds"] - r["tool_seconds"] for r in mine]
                mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
                slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
                fit = {"benchmark": f"orchestration growth on {env}", "environment": env,
                       "seconds_per_cell": slope, "fixed_seconds": my - slope * mx}
                print(f"  {env:>12}: overhead = {fit['fixed_seconds']:.2f} s + {fit['seconds_per_cell']:.3f} s "
                      f"per cell (least squares over {', '.join(map(str, xs))} cells)", flush=True)
                mine.append(fit)
            results += mine
    finally:
        shutil.rmtree(cfg, ignore_errors=True)
    return results
