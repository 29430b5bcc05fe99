"""The command line: `bench run`, `bench list`, `bench report`, `bench compare`, `bench export`,
`bench doctor`, `bench image`, `bench cleanup`.

One module per command (run.py, listing.py for `list`, ...), each with its NAME, HELP,
DESCRIPTION, its `arguments(parser)` and its `run(args, catalogue)`; the parser is assembled
from them here, in COMMANDS' order. Every error a user can cause is one line on stderr and exit
status 2; an interrupted run exits 130 (Ctrl-C) or 143 (SIGTERM) after tearing down what it
made. EXIT_STATUS is the whole list.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

from .. import config, interrupts, settings, workloads
from ..errors import BenchError
from . import cleanup, compare, doctor, export, image, listing, report, run
from .common import interrupted_status

# The commands in the order `bench --help` lists them.
COMMANDS = (run, image, cleanup, report, compare, export, doctor, listing)

EXAMPLES = """\
examples:
  bench list                              what can run here (--long: details, --json: all of it)
  bench list environments --available     only the environments that can run here
  bench run --suite quick                 the quick suite on every available environment
  bench run --suite quick --env host --reps 5 --out /data/results
  bench run --suite net --env host,docker-nat --client-host root@lab2 --ssh-option IdentityFile=/root/.ssh/lab
                                          clients on a second host, over SSH, as the IBM study did
  bench report RUN_ID -o report.html      one self-contained HTML report of one or more runs
  bench compare RUN_A RUN_B --threshold 5 exit status 1 on a significant regression (a CI gate)
  bench export RUN_ID --format parquet    the samples as a file for pandas, R, DuckDB...
  bench doctor                            what this host can run, and what would spoil measurements
"""


# What each exit status means, as `bench --help` and docs/running.md say it (a test holds them together).
EXIT_STATUS = {
    0: "done: every repetition measured (compare: no significant regression; doctor: no check failed)",
    1: "ran, but not everything was measured: repetitions failed (listed), or the run had to stop "
       "(its results' disk full), with the command that finishes it (compare: a significant "
       "regression; doctor: a check failed)",
    2: "refused before anything was measured: bad input, a missing tool, an environment that "
       "cannot run, a run in progress",
    130: "interrupted by Ctrl-C (143: by SIGTERM), after tearing down; the line says how to resume "
         "the run or render its report",
    70: "an internal error (the traceback is in the file named)",
}


def _exit_status() -> str:
    lines = [textwrap.fill(meaning, 96, initial_indent=f"  {code:<5}", subsequent_indent=" " * 7)
             for code, meaning in EXIT_STATUS.items()]
    return "\nexit status:\n" + "\n".join(lines) + "\n"


def _variables() -> str:
    """The user's variables, read once when bench starts (bench/settings.py)."""
    width = max(map(len, settings.VARIABLES))
    lines = [f"  {name:<{width}}  {meaning}" for name, meaning in settings.VARIABLES.items()]
    return "\nvariables (read once, when bench starts):\n" + "\n".join(lines) + "\n"


def version() -> str:
    """The installed distribution's version; from a checkout that is not installed, pyproject's."""
    import importlib.metadata

    try:
        return importlib.metadata.version("bench")
    except importlib.metadata.PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text())["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


class Parser(argparse.ArgumentParser):
    """argparse with bench's one-line errors: `bench: error: ...` and where to look, no usage
    block (every verb's parser is one of these: add_subparsers takes the parent's class)."""

    def error(self, message: str):
        self.exit(2, f"bench: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="bench",
        description="Run identical workloads on the bare host, in containers and in VMs, "
                    "and keep every result with its raw output and metadata.",
        epilog=EXAMPLES + _variables() + _exit_status(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"bench {version()}")
    parser.add_argument("--config-dir", type=Path, default=None,
                        help="folder of suites, workloads and environments "
                             "(default: the checkout's workloads/, or $BENCH_CONFIG_DIR)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    for command in COMMANDS:
        command.arguments(verbs.add_parser(command.NAME, help=command.HELP, description=command.DESCRIPTION))
    return parser


def _say_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one plain line, as every other word of bench: not Python's `file:line:
    UserWarning:` with the source line under it."""
    print(f"bench: warning: {' '.join(str(message).split())}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.showwarning = _say_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    # The user's variables, read here once: bench's settings (what its image is made of, where
    # it keeps what it makes) for every module, and the data folder, which config.load makes
    # the one in use.
    try:
        settings.use(settings.Settings.from_environ(os.environ, workloads.packages()))
    except settings.SettingsError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    config_dir = args.config_dir or (Path(os.environ["BENCH_CONFIG_DIR"]) if os.environ.get("BENCH_CONFIG_DIR")
                                     else None)
    try:
        catalogue = config.load(config_dir)
        command = next(c for c in COMMANDS if c.NAME == args.verb)
        with interrupts.as_interrupt():   # SIGTERM too: said, and whatever was started stopped
            return command.run(args, catalogue)
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM outside a run's measuring (its own handler tears down and says
        # more): during the KVM probe, a report, a cleanup. Whatever was started is stopped with us.
        print("bench: interrupted", file=sys.stderr)
        return interrupted_status()
    except BrokenPipeError:
        # `bench list | head`: the reader has gone; say nothing more (and not at exit either).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # noqa: BLE001
        # Not the user's mistake as far as bench can tell, but a bug it did not foresee: one line
        # here, the traceback in a file to report.
        return _internal_error(e)


def _internal_error(e: BaseException) -> int:
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="bench-error-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        traceback.print_exception(e, file=f)
    print(f"bench: internal error: {type(e).__name__}: {str(e)[:200]} (traceback in {path}; please report it)",
          file=sys.stderr)
    return 70   # EX_SOFTWARE

