"""Run the benchmarks of bench itself and print each figure beside its target.

    .venv/bin/python -m benchmarks                 # everything (about 15 minutes here)
    .venv/bin/python -m benchmarks --only report --skip-1m
    .venv/bin/python -m benchmarks --json benchmarks/latest.json

Sections: transparency (fio, netperf through `bench run --env host` against the same command
run directly), orchestration (overhead of the quick suite; growth with the number of cells),
image (a cached `bench image build`; a TCG guest's boot-to-ready), report (render time and
peak memory at 10^4, 10^5, 10^6 samples). They measure, they do not pass or fail: the exit
status is 0 unless a benchmark could not run. Run it on a quiet machine; the results say
whether it was.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import traceback

from bench import settings, workloads
from bench.metadata import host_metadata

from . import images, orchestration, report_scale, transparency
from .common import ci_running

SECTIONS = ("transparency", "orchestration", "image", "report")


def machine() -> dict:
    h = host_metadata()
    return {k: h[k] for k in ("hostname", "cpu_model_name", "cpu_count", "cpu_physical_cores", "memory_total_bytes",
                              "kernel", "os", "cpu_governor", "python_version", "load_avg_1min")}


def main(argv: list[str] | None = None) -> int:
    # bench's modules used in this process read the user's variables as the command line does
    settings.use(settings.Settings.from_environ(os.environ, workloads.packages()))
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    ap.add_argument("--pairs", type=int, default=5, help="transparency: rounds per tool, each a direct run, a "
                    "bench run and a second direct run (the A/A control), interleaved (default 5)")
    ap.add_argument("--seconds", type=int, default=3, help="transparency: length of each fio/netperf run (default 3)")
    ap.add_argument("--quick-env", default="host,docker-nat,docker-host", help="orchestration: environments "
                    "for the quick suite, comma-separated (default host,docker-nat,docker-host)")
    ap.add_argument("--cells-env", default="host,docker-nat,docker-host", help="orchestration: environments for "
                    "the growth with the number of cells (default host,docker-nat,docker-host)")
    ap.add_argument("--cells", default="1,2,4,8", help="orchestration: numbers of 1-s cells (default 1,2,4,8)")
    ap.add_argument("--quick-reps", type=int, default=None, help="orchestration: repetitions of the quick suite "
                    "(default: the suite's, 3)")
    ap.add_argument("--skip-quick", action="store_true", help="orchestration: only the growth with the number "
                    "of cells, not the quick suite (minutes per environment)")
    ap.add_argument("--skip-1m", action="store_true", help="report: leave out 1,000,000 samples (minutes)")
    ap.add_argument("--no-tcg", action="store_true", help="image: leave out the TCG guest's boot")
    ap.add_argument("--json", help="also write every result, with the machine, to this file")
    a = ap.parse_args(argv)
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section {', '.join(unknown)}; known: {', '.join(SECTIONS)}")

    started = datetime.datetime.now(datetime.timezone.utc)
    loaded = ci_running()
    m = machine()
    print(f"machine: {m['cpu_model_name']}, {m['cpu_count']} CPUs, {m['memory_total_bytes'] / 2**30:.0f} GiB, "
          f"kernel {m['kernel']}; load {m['load_avg_1min']}{'; CI running: LOADED' if loaded else ''}", flush=True)
    results, errors = [], []
    plan = {
        "transparency": lambda: transparency.run(a.pairs, a.seconds),
        "orchestration": lambda: ([] if a.skip_quick else orchestration.quick_suite(a.quick_env.split(","), a.quick_reps))
        + orchestration.scaling(a.cells_env.split(","), tuple(int(n) for n in a.cells.split(","))),
        "image": lambda: [images.image_cache()] + ([] if a.no_tcg else [images.tcg_boot()]),
        "report": lambda: report_scale.run((10_000, 100_000) if a.skip_1m else (10_000, 100_000, 1_000_000)),
    }
    for section in only:
        print(f"\n{section}:", flush=True)
        try:
            results += plan[section]()
        except Exception as e:   # one benchmark failing does not lose the others' figures
            errors.append(f"{section}: {e}")
            print(f"  FAILED: {e}", file=sys.stderr, flush=True)
            if os.environ.get("BENCH_DEBUG"):
                traceback.print_exc()
    loaded = loaded or ci_running()
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"started": started.isoformat(), "machine": m, "loaded_by_ci": loaded,
                       "load_avg_1min_after": round(os.getloadavg()[0], 2), "results": results, "errors": errors},
                      f, indent=2, default=str)
    print(f"\n{len(results)} results, {len(errors)} failed{'; the machine was LOADED (CI)' if loaded else ''}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
