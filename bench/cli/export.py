"""`bench export`: one or more runs' samples as a file for pandas, R, DuckDB..."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import config
from ..errors import BenchError
from .common import check_results_folder, resolve_run, results_folder, warnings_said

NAME = "export"
HELP = "write one or more runs' samples as CSV, Parquet or JSON lines"
DESCRIPTION = ("The tidy samples of bench.load() (one row per sample, parameters as param_* and the "
               "environment's variant as env_* columns, timestamps as ISO 8601 UTC) as a file for other tools.")


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folder, or run id under --out")
    parser.add_argument("--format", choices=("csv", "parquet", "jsonl"), default="csv",
                        help="file format (default: csv; parquet needs pyarrow)")
    parser.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                        help="the file to write (default: RUN_ID.FORMAT in the current folder)")
    results_folder(parser)


def run(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    from .. import export
    from ..store import load

    check_results_folder(args.out, f"samples{export.SUFFIX[args.format]}")
    folders = [resolve_run(r, args.out) for r in args.runs]
    with warnings_said():  # an incomplete run is exported with what it has, and said so
        frame = load(*folders)
    if frame.empty:
        raise BenchError(f"{', '.join(map(str, folders))}: no samples to export")
    name = folders[0].name if len(folders) == 1 else "samples"
    out = args.output or Path(name + export.SUFFIX[args.format])
    export.write(frame, args.format, out)
    print(f"{len(frame)} samples, {len(frame.columns)} columns -> {out}")
    return 0
