"""The verdict of `bench compare`, for the command line and a notebook alike: two runs compared
cell by cell (environment, workload, sweep point) and metric, and which changes count.

    from bench.compare import compare
    c = compare("results/<run A>", "results/<run B>", threshold=5)
    c.rows[c.rows.regression]      # the cells whose headline metric got significantly worse
    c.regressed                    # what sets `bench compare`'s exit status 1

A cell regresses when its headline metric (its tool's first) got significantly worse beyond
the threshold; its other metrics (tail latencies, CPU per byte) are flagged `worse` the same
way but do not count: between two runs of one build a p99 drifts by tens of percent where the
headline does not.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .errors import BenchError
from .limits import THRESHOLD

DEFAULT_THRESHOLD = 5.0   # percent


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Run B (after) against run A (before, the reference)."""

    # One row per cell and metric in both runs: stats.compare_runs' columns (means, n, the
    # change in the worse direction as overhead_pct and its interval, p, significant, few,
    # noisy) and the verdict's: headline, regression, worse, better, changed.
    rows: Any
    threshold: float
    only_in_a: list[tuple[str, str]]   # (environment, workload) cells run B lacks, in run order
    only_in_b: list[tuple[str, str]]

    @property
    def regressed(self) -> bool:
        """A significant regression of a headline metric: `bench compare` exits 1."""
        return bool(self.rows["regression"].any())


def compare(before, after, threshold: float = DEFAULT_THRESHOLD,
            names: tuple[str, str] | None = None) -> Comparison:
    """before, after: run folders, or their samples as bench.load() returns them. names: what
    a message calls the two runs (default: their run ids). Raises BenchError when a run has no
    samples or the two have no cell in common."""
    from . import stats
    from .store import load

    THRESHOLD.check(threshold)
    a, b = (load(run) if isinstance(run, (str, Path)) else run for run in (before, after))
    names = names or tuple(", ".join(map(str, frame["run_id"].unique())) if "run_id" in frame else "?"
                           for frame in (a, b))
    for frame, name in zip((a, b), names):
        if frame.empty:
            raise BenchError(f"{name}: no samples to compare")
    table = stats.compare_runs(a, b)
    if table.empty:
        raise BenchError(f"{names[0]} and {names[1]} have no cell (environment, workload, metric) in common")
    # The reference run's headlines first: a workload's headline is what it was compared on.
    rows = judge(table, {**stats.headline_metrics(b), **stats.headline_metrics(a)}, threshold)
    return Comparison(rows, threshold, *one_run_only(a, b))


def judge(table, headlines: dict[str, str], threshold: float):
    """stats.compare_runs' table with which rows count: `headline` (the workload's headline
    metric), `regression` (a headline significantly worse beyond the threshold), `worse` (any
    other metric so), `better`, and `changed` (significant, or beyond the threshold)."""
    headline = table["metric"] == table["workload"].map(headlines)
    beyond = table["significant"] & (table["overhead_pct"] > threshold)
    return table.assign(headline=headline, regression=headline & beyond, worse=~headline & beyond,
                        better=table["significant"] & (table["overhead_pct"] < -threshold),
                        changed=table["significant"] | (table["overhead_pct"].abs() > threshold))


def one_run_only(before, after) -> tuple[list, list]:
    """The cells (environment, workload) that one run has and the other has not, in run order."""
    a = dict.fromkeys(zip(before["environment"], before["workload"]))
    b = dict.fromkeys(zip(after["environment"], after["workload"]))
    return [c for c in a if c not in b], [c for c in b if c not in a]
