"""`bench report`: one self-contained HTML report of one or more runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import config
from .common import SKIPPED, check_results_folder, need_report_packages, resolve_run, results_folder, warnings_said

NAME = "report"
HELP = "write an HTML report of one or more runs"
DESCRIPTION = ("Statistics (mean, SD, 95 % intervals, ratio to native with its interval, significance), tables "
               "and figures of one or more runs, as one self-contained HTML file. Runs are pooled per "
               "environment.")


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folder, or run id under --out")
    parser.add_argument("-o", "--output", type=Path, default=Path("report.html"), metavar="FILE",
                        help="the HTML file to write (default: report.html)")
    results_folder(parser)


def run(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    need_report_packages()
    from ..report import render_runs

    check_results_folder(args.out, "report.html")
    folders = [resolve_run(r, args.out) for r in args.runs]
    with warnings_said(only=SKIPPED):  # the report's own notes hold every warning
        print(f"report: {render_runs(folders, args.output)}")
    return 0
