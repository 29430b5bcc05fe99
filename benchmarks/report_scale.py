"""Report scale: `bench.load` and `render_runs` against `pandas.read_json(lines=True)` of the same
samples.jsonl, side by side in one process, for synthetic results sets of 10,000, 100,000 and
1,000,000 samples (benchmarks/synthetic.py: lab-shaped, 8 environments x 420 cells, the
repetitions making up the size), and the report's peak memory.

Targets (issue #30): load at most x0.5 of pandas' read of the same file; the report within x3
of it, at 100,000 and at 1,000,000 samples; a million samples reported within 1.5 GiB.
Ratios, not seconds: on a shared machine the load slows all three alike, and the ratio of
two things measured in the same process, one after the other, is what stays.

Each size runs in child processes of its own (`python -m benchmarks.report_scale FOLDER
[--render-only]`): one times the three side by side; another renders alone, so that its peak
resident memory (ru_maxrss from wait4) is the report's own, not pandas' read's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .common import REPO, verdict
from .synthetic import write_run

LOAD_RATIO, REPORT_RATIO, PEAK_MIB = 0.5, 3.0, 1536


def _timed(fn, spent: dict, key: str):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[key] = spent.get(key, 0.0) + time.perf_counter() - start
    return wrapper


def _child(folder: str, render_only: bool) -> None:
    start = time.perf_counter()
    import pandas as pd

    import bench
    import bench.report
    from bench import stats
    from bench.report import figures
    spent = {"import": time.perf_counter() - start}   # a `bench report` pays the imports too
    if not render_only:
        start = time.perf_counter()
        pd.read_json(Path(folder) / "samples.jsonl", lines=True)
        spent["read_json"] = time.perf_counter() - start
        start = time.perf_counter()
        bench.load(folder)
        spent["bench_load"] = time.perf_counter() - start
    # The phases inside render_runs, timed where build() calls them.
    bench.report.load = _timed(bench.report.load, spent, "load")
    stats.summarize = _timed(stats.summarize, spent, "summarize")
    figures.draw_all = _timed(figures.draw_all, spent, "figures")
    bench.report.render = _timed(bench.report.render, spent, "template")
    start = time.perf_counter()
    bench.report.render_runs([folder], Path(folder) / "report.html")
    spent["render_runs"] = time.perf_counter() - start
    print(json.dumps(spent))


def _run_child(folder: Path, *extra: str, timeout: float) -> tuple[dict, object]:
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.report_scale", str(folder), *extra], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    killer = threading.Timer(timeout, proc.kill)   # bounded: a runaway render is killed
    killer.start()
    try:
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)   # this child's own peak RSS
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        killer.cancel()
    if proc.returncode != 0:
        raise RuntimeError(f"rendering {folder.name} failed or timed out ({proc.returncode})")
    return json.loads(out.strip().splitlines()[-1]), usage


def measure(samples: int, timeout: float = 1800) -> dict:
    root = Path(tempfile.mkdtemp(prefix="bench-benchmarks-report-"))
    try:
        folder = root / f"synthetic-{samples}"
        n = write_run(folder, samples)
        load_before = os.getloadavg()[0]
        side, _ = _run_child(folder, timeout=timeout)
        alone, usage = _run_child(folder, "--render-only", timeout=timeout)
        html = (folder / "report.html").stat().st_size
        read = side["read_json"]
        return {"benchmark": f"report of {n:,} samples", "samples": n,
                "read_json_seconds": round(read, 2), "load_seconds": round(side["bench_load"], 2),
                "render_runs_seconds": round(side["render_runs"], 2),
                "load_ratio": round(side["bench_load"] / read, 2), "report_ratio": round(side["render_runs"] / read, 2),
                "import_seconds": round(side["import"], 2),
                "phases": {k: round(side.get(k, 0.0), 2) for k in ("load", "summarize", "figures", "template")},
                "render_alone_seconds": round(alone["render_runs"], 2),
                "peak_rss_mib": round(usage.ru_maxrss / 1024), "html_mib": round(html / 2**20, 1),
                "cpu_seconds_alone": round(usage.ru_utime + usage.ru_stime, 2),
                "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)) -> list[dict]:
    results = []
    for size in sizes:
        r = measure(size)
        if 100_000 <= r["samples"] < 1_000_000:   # the targets are at lab scale; 10,000 is for the trend
            r["target"] = f"load <= x{LOAD_RATIO} of read_json; report <= x{REPORT_RATIO:g}"
            r["met"] = r["load_ratio"] <= LOAD_RATIO and r["report_ratio"] <= REPORT_RATIO
        elif r["samples"] >= 1_000_000:
            r["target"] = f"report <= x{REPORT_RATIO:g} of read_json; peak < {PEAK_MIB} MiB"
            r["met"] = r["report_ratio"] <= REPORT_RATIO and r["peak_rss_mib"] < PEAK_MIB
        results.append(r)
        p = r["phases"]
        met = f" - {verdict(r['met'])}" if "met" in r else ""
        print(f"  {r['samples']:>9,} samples: pandas.read_json {r['read_json_seconds']:.2f} s; bench.load "
              f"{r['load_seconds']:.2f} s (x{r['load_ratio']}); render_runs {r['render_runs_seconds']:.2f} s "
              f"(x{r['report_ratio']}: load {p['load']:.2f}, summarize {p['summarize']:.2f}, figures {p['figures']:.2f}, "
              f"template {p['template']:.2f}); alone {r['render_alone_seconds']:.2f} s, peak RSS {r['peak_rss_mib']} MiB, "
              f"HTML {r['html_mib']} MiB; load average {r['load_avg_1min']}{met}", flush=True)
    return results


if __name__ == "__main__":
    _child(sys.argv[1], "--render-only" in sys.argv[2:])
