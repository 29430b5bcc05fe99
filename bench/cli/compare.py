"""`bench compare`: two runs cell by cell, exit status 1 on a significant regression (a CI gate).
The verdict is bench/compare.py's; this prints it."""

from __future__ import annotations

import argparse
import textwrap

from .. import config, text
from ..compare import DEFAULT_THRESHOLD, Comparison, compare
from ..errors import BenchError
from ..limits import THRESHOLD
from . import tables
from .common import (SKIPPED, check_results_folder, limited, need_report_packages, resolve_run, results_folder,
                     warnings_said)

NAME = "compare"
HELP = "compare two runs cell by cell; exit 1 on a significant regression"
DESCRIPTION = ("Per cell (environment, workload, sweep point) and metric: the change from RUN_A to RUN_B, its "
               "95 % interval and its significance, and the cells only one run has. Exit status 1 when a "
               "cell's headline metric (its tool's first, marked *) got significantly worse by more than "
               "--threshold percent: usable as a CI gate. Other metrics are flagged `worse` the same way but "
               "do not count.")


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", metavar="RUN_A", help="the reference run (folder, or run id under --out)")
    parser.add_argument("run_b", metavar="RUN_B", help="the run to check against it")
    parser.add_argument("--threshold", type=limited(THRESHOLD), default=DEFAULT_THRESHOLD, metavar="PCT",
                        help="smallest worse-direction change of a headline metric counted as a regression "
                             "(default: 5)")
    parser.add_argument("--all", action="store_true", help="list every metric of every cell, not only changed ones")
    results_folder(parser, writes_a_file=False)


def run(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    need_report_packages()
    from ..store import load

    check_results_folder(args.out, None)
    a, b = resolve_run(args.run_a, args.out), resolve_run(args.run_b, args.out)
    with warnings_said(only=SKIPPED):  # an incomplete run is compared on what it has, unsaid
        before, after = load(a), load(b)
    if before.empty or after.empty:
        raise BenchError(f"{a if before.empty else b}: no samples to compare")
    verdict = compare(before, after, args.threshold, names=(a.name, b.name))
    columns = text.width()
    listed = _listed(verdict.rows, args.all)
    for line in tables.compare_lines(listed, columns):
        print(line)
    print()
    for paragraph in _footer(verdict, listed, (a.name, b.name)):
        print(textwrap.fill(paragraph, columns, break_on_hyphens=False, subsequent_indent="  "))
    return 1 if verdict.regressed else 0


def _listed(rows, every: bool) -> list[list]:
    """The rows to print, per cell: every row, or the changed ones with their cell's headline
    row first (a changed tail latency reads differently beside a steady headline)."""
    from ..stats import NATIVE

    groups = []
    for _, cell in rows.groupby(["environment", "workload", "point"], sort=False):
        if not every and not cell["changed"].any():
            continue
        shown = cell if every else cell[cell["changed"] | cell["headline"]]
        groups.append(sorted(shown.itertuples(), key=lambda r: not r.headline))  # stable: headline first
    # Workloads in run order; within one, native first, then the same environment order each time.
    workloads = list(dict.fromkeys(rows["workload"]))
    return sorted(groups, key=lambda g: (workloads.index(g[0].workload), g[0].environment != NATIVE,
                                         g[0].environment))


def _footer(verdict: Comparison, listed: list[list], names: tuple[str, str]) -> list[str]:
    rows = verdict.rows
    n_cells = rows.groupby(["environment", "workload", "point"], sort=False).ngroups
    n_listed = sum(map(len, listed))
    paragraphs = [
        f"{n_cells} cells (environment, workload, sweep point) in both runs, {len(rows)} metrics in all; "
        f"{len(rows) - n_listed} unchanged not listed (--all lists them).",
        "change: B against A in the worse direction (+ is worse, whatever the metric). * marks a cell's "
        "headline metric (its tool's first): only its regressions count toward the exit status; other "
        "metrics significantly worse beyond the threshold are flagged worse.",
        f"{int(rows['significant'].sum())} significant (alpha 0.05{_permutation_floor(rows)}).",
        f"{int(rows['regression'].sum())} regression(s) beyond {verdict.threshold:g} % on headline metrics; "
        f"{int(rows['worse'].sum())} other metric(s) worse beyond it, not counted.",
    ]
    for side, name, only in zip("AB", names, (verdict.only_in_a, verdict.only_in_b)):
        if only:
            paragraphs.append(f"only in {side} ({name}), not compared: "
                              + ", ".join(f"{env} · {workload}" for env, workload in only))
    return paragraphs


def _permutation_floor(rows) -> str:
    """Where the permutation test cannot reach alpha at these repetitions, say who decided."""
    tested = rows[(rows["n_a"] >= 2) & (rows["n_b"] >= 2)]
    if tested.empty or tested["p_min"].max() <= 0.05:
        return ""
    worst = tested.loc[tested["p_min"].idxmax()]
    return (f"; with {worst['n_a']} + {worst['n_b']} repetitions the permutation p cannot go below "
            f"{worst['p_min']:.3g}: there the Fieller interval decides")
