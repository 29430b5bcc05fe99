"""Report scale: `render_runs` time and peak memory for synthetic results sets of 10,000,
100,000 and 1,000,000 samples (benchmarks/synthetic.py: lab-shaped, 8 environments x 420
cells, the repetitions making up the size). Target: 100,000 samples in under 10 s.

Each size renders in a child process of its own (`python -m benchmarks.report_scale FOLDER`),
so that its peak resident memory (ru_maxrss from wait4: the child, or the largest of the figure
workers it forked) is its own, and the import of matplotlib/pandas/scipy is counted, as a user's
`bench report` pays it. The CPU seconds (the child's and its workers') are given too: on a
shared machine they, not the wall time, say what the report costs.
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

TARGET_100K = 10.0


def _timed(fn, spent: dict, key: str):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[key] = spent.get(key, 0.0) + time.perf_counter() - start
    return wrapper


def _child(folder: str) -> None:
    start = time.perf_counter()
    import bench.report
    from bench import stats
    spent = {"import": time.perf_counter() - start}   # a `bench report` pays the imports too
    # The phases inside render_runs, timed where build() calls them.
    bench.report.load = _timed(bench.report.load, spent, "load")
    stats.summarize = _timed(stats.summarize, spent, "summarize")
    start = time.perf_counter()
    bench.report.render_runs([folder], Path(folder) / "report.html")
    spent["render_runs"] = time.perf_counter() - start
    print(json.dumps(spent))


def measure(samples: int, timeout: float = 1800) -> dict:
    root = Path(tempfile.mkdtemp(prefix="bench-benchmarks-report-"))
    try:
        folder = root / f"synthetic-{samples}"
        n = write_run(folder, samples)
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.report_scale", str(folder)], cwd=REPO,
                                stdout=subprocess.PIPE, text=True)
        start = time.perf_counter()
        killer = threading.Timer(timeout, proc.kill)   # bounded: a runaway render is killed
        killer.start()
        try:
            out = proc.stdout.read()
            # wait4: this child's own peak RSS (Linux merges in the figure workers it waited for).
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            killer.cancel()
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"rendering {n} samples failed or timed out ({proc.returncode})")
        phases = json.loads(out.strip().splitlines()[-1])
        html = (folder / "report.html").stat().st_size
        return {"benchmark": f"report of {n:,} samples", "samples": n, "process_seconds": round(wall, 2),
                "render_runs_seconds": round(phases["render_runs"], 2), "import_seconds": round(phases["import"], 2),
                "load_seconds": round(phases["load"], 2), "summarize_seconds": round(phases["summarize"], 2),
                "peak_rss_mib": round(usage.ru_maxrss / 1024), "html_mib": round(html / 2**20, 1),
                # CPU seconds of the render and its figure/test workers: on a busy machine the
                # wall time says how busy it was, this what the report itself costs.
                "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
                "load_avg_1min": round(os.getloadavg()[0], 2)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)) -> list[dict]:
    results = []
    for size in sizes:
        r = measure(size)
        if r["samples"] >= 100_000 and r["samples"] < 1_000_000:
            r["target"] = f"< {TARGET_100K:.0f} s"
            r["met"] = r["render_runs_seconds"] < TARGET_100K
        results.append(r)
        target = f" - target < {TARGET_100K:.0f} s {verdict(r['met'])}" if "met" in r else ""
        print(f"  {r['samples']:>9,} samples: render_runs {r['render_runs_seconds']:.1f} s (of which load "
              f"{r['load_seconds']:.1f} s, summarize {r['summarize_seconds']:.1f} s, the rest figures and HTML); "
              f"CPU {r['cpu_seconds']:.1f} s (with imports; load average {r['load_avg_1min']}); peak RSS "
              f"{r['peak_rss_mib']} MiB; HTML {r['html_mib']} MiB{target}", flush=True)
    return results


if __name__ == "__main__":
    _child(sys.argv[1])
