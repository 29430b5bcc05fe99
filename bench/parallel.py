"""Map a function over independent jobs in forked worker processes.

The report's costly part is CPU-bound Python (scipy's
permutation tests) that holds the GIL, so threads would not help; forked workers start at once
with everything already imported. Results come back in the jobs' order and are the same as a
serial map's: callers only hand over jobs that are deterministic on their own (a figure, a
permutation test with its own seeded generator).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import Any

from . import settings


def workers() -> int:
    """The settings' workers (BENCH_WORKERS; 1: no worker processes), else one per CPU this
    process may use."""
    return settings.current().workers or len(os.sched_getaffinity(0))


def pmap(fn: Callable[[Any], Any], jobs: Sequence[Any]) -> list[Any]:
    """[fn(job) for job in jobs], spread over worker processes when that can help. fn must be
    a module-level function (it is pickled by name)."""
    n = min(workers(), len(jobs))
    if n < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [fn(job) for job in jobs]
    try:
        with concurrent.futures.ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(fn, jobs))
    except (concurrent.futures.process.BrokenProcessPool, OSError):
        return [fn(job) for job in jobs]   # a worker died (out of memory?): do it here instead
