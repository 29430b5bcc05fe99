"""Adaptive repetitions (`bench run --target-ci PCT --max-reps N`).

After the suite's repetitions, a cell (environment, workload) whose headline number is not yet
known to within ±PCT % of its mean (the half-width of the 95 % t interval) gets one more
repetition, in rounds: every cell still short of the target runs once per round, environments
in a seeded shuffled order within each workload, so a machine's drift over the run is spread
over all environments instead of landing on the ones that needed more repetitions. A cell stops
at the target or at N repetitions; a cell with no successful repetition gets no more (a broken
tool does not heal by being run again).

The headline is the first measurement a repetition stored (the parser's headline, at the
first point of a sweep): one number per repetition decides, as in the run's summary.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

from .model import Sample


def headline_values(samples: Iterable[Sample]) -> dict[tuple[str, str], list[float]]:
    """(environment, workload) -> the headline value of each measured repetition."""
    first: dict[tuple[str, str, int], float] = {}
    for s in samples:
        if s.workload != "provision":
            first.setdefault((s.environment, s.workload, s.repetition), s.value)
    cells: dict[tuple[str, str], list[float]] = {}
    for (env, workload, _), value in first.items():
        cells.setdefault((env, workload), []).append(value)
    return cells


def relative_half_width(values: list[float], confidence: float = 0.95) -> float:
    """Half-width of the t interval of the mean, in % of the mean (inf when it is unknown)."""
    from .stats import describe

    d = describe(values, confidence)
    if d["n"] < 2 or not d["mean"] or math.isnan(d["ci_high"]):
        return math.inf
    return (d["ci_high"] - d["mean"]) / abs(d["mean"]) * 100.0


def cells_short_of_target(samples: Iterable[Sample], repetitions_done: dict[tuple[str, str], int],
                          target_pct: float, max_reps: int) -> set[tuple[str, str]]:
    """Cells that need another repetition: interval wider than the target, cap not reached."""
    short = set()
    for cell, values in headline_values(samples).items():
        if repetitions_done.get(cell, 0) < max_reps and relative_half_width(values) > target_pct:
            short.add(cell)
    return short


def next_round(short: set[tuple[str, str]], workloads: list[str], environments: list[str],
               rng: random.Random) -> list[tuple[str, str]]:
    """One repetition of every short cell: workloads in suite order, environments shuffled."""
    order = []
    for w in workloads:
        envs = [e for e in environments if (e, w) in short]
        rng.shuffle(envs)
        order += [(e, w) for e in envs]
    return order
