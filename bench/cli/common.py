"""What several commands share: argument types (a limited number made from the library's own
limits, a list of names), the results folder and the runs found in it, the report's packages,
warnings said as one line, and the exit status of an interrupted command."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from .. import interrupts
from ..errors import BenchError
from ..limits import Limit


def limited(limit: Limit) -> Callable[[str], int | float]:
    """The argparse type of a numeric flag: its value within the limits the library checks,
    or a one-line error naming them."""

    def parse(text: str):
        try:
            return limit.parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    parse.__name__ = limit.kind.__name__   # argparse names the type in its messages
    return parse


def names(value: str) -> list[str]:
    """NAME[,NAME...]: one or more names, none twice."""
    given = [part.strip() for part in value.split(",") if part.strip()]
    if not given:
        raise argparse.ArgumentTypeError("expected one or more names separated by commas")
    twice = sorted({name for name in given if given.count(name) > 1})
    if twice:   # a slip, not a wish to run it twice: say so rather than guess
        raise argparse.ArgumentTypeError(f"{', '.join(twice)} given twice")
    return given


def results_folder(parser: argparse.ArgumentParser, writes_a_file: bool = True) -> None:
    """--out for the verbs that take runs by id (report, compare, export): always the results
    folder, as in `bench run`; the file a verb writes is -o/--output."""
    parser.add_argument("--out", type=Path, default=Path("results"), metavar="FOLDER",
                        help="results folder where run ids are looked up (default: results)"
                             + ("; the file to write is -o" if writes_a_file else ""))


# What a file a verb writes is named like; a folder of results is not (see check_results_folder).
FILE_SUFFIXES = (".html", ".htm", ".csv", ".parquet", ".jsonl", ".json")


def check_results_folder(out: Path, output_example: str | None) -> None:
    """--out is the results folder in every verb. `bench report RUN --out r.html` meant the file
    to write, which is -o: say so instead of writing report.html and ignoring r.html.
    output_example: the verb's usual output file name; None for a verb that writes none."""
    named_like_a_file = out.suffix.lower() in FILE_SUFFIXES
    if out.is_dir() or not (named_like_a_file or out.exists()):
        return
    fix = (f": to name the file to write, use -o {out if named_like_a_file else output_example}"
           if output_example is not None else " (compare prints; it writes no file)")
    raise BenchError(f"--out {out}: --out is the results folder where run ids are looked up, not a file{fix}")


def resolve_run(name: str, out: Path) -> Path:
    """A run folder given as a path (from anywhere), or as a run id under the results folder."""
    from ..store import MANIFEST, check_run_id

    if (Path(name) / MANIFEST).exists():
        return Path(name)
    try:
        run_id = check_run_id(name)
    except BenchError:  # not a run id, so it was meant as a path: say that it is not a run folder
        run_id = None
    if run_id and (out / run_id / MANIFEST).exists():
        return out / run_id
    raise BenchError(f"no run folder {name!r} (neither a folder with run.json nor a run id in {out}/)")


def need_report_packages() -> None:
    missing = [m for m in ("scipy", "pyarrow", "jinja2") if importlib.util.find_spec(m) is None]
    if missing:
        raise BenchError(f"the report needs {', '.join(missing)}: run scripts/setup.sh "
                         f"(it installs bench's dependencies into .venv)")


SKIPPED = "unreadable record"  # the store's warning of records it could not read


@contextlib.contextmanager
def warnings_said(only: str | None = None):
    """The store's warnings, said on stderr as one line each (`only`: those that contain it)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if only is None or only in str(w.message):
            print(f"bench: warning: {w.message}", file=sys.stderr)


def interrupted_status() -> int:
    """128 + the signal that stopped bench, as a shell says it: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + (interrupts.received[0] if interrupts.received else signal.SIGINT)
