"""The command line: `bench run`, `bench list`, `bench report`, `bench compare`, `bench export`,
`bench doctor`.

Every error a user can cause is one line on stderr and exit status 2; an interrupted run exits
130 (Ctrl-C) or 143 (SIGTERM) after tearing down what it made. EXIT_STATUS is the whole list.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import math
import os
import re
import signal
import statistics
import sys
import textwrap
from pathlib import Path

from . import config, interrupts, settings, text, workloads
from .errors import BenchError
from .store import RunStore

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


# What each exit status means, as `bench --help` and README say it (a test holds them together).
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


def _csv(value: str) -> list[str]:
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected one or more names separated by commas")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:   # a slip, not a wish to run it twice: say so rather than guess
        raise argparse.ArgumentTypeError(f"{', '.join(twice)} given twice")
    return names


def version() -> str:
    """The installed distribution's version; from a checkout that is not installed, pyproject's."""
    import importlib.metadata

    try:
        return importlib.metadata.version("bench")
    except importlib.metadata.PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text())["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


def _results_folder(parser: argparse.ArgumentParser, writes_a_file: bool = True) -> None:
    """--out for the verbs that take runs by id (report, compare, export): always the results
    folder, as in `bench run`; the file a verb writes is -o/--output."""
    parser.add_argument("--out", type=Path, default=Path("results"), metavar="FOLDER",
                        help="results folder where run ids are looked up (default: results)"
                             + ("; the file to write is -o" if writes_a_file else ""))


LIST_SECTIONS = ("suites", "workloads", "environments")


def _number(kind: type, low: float, high: float):
    """An argparse type: a whole (int) or finite (float) number within [low, high], or a one-line
    error naming the range (float() alone takes "nan" and "inf")."""
    what = "a whole number" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} from {low:g} to {high:g}, not {text[:30]!r}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} from {low:g} to {high:g}, not {text[:30]!r}")
        return value
    parse.__name__ = kind.__name__   # argparse names the type in its messages
    return parse


REPS = _number(int, 1, 1000)


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

    run = verbs.add_parser("run", help="run a suite and store its results",
                           description="Run a suite's workloads in each environment, with warm-ups "
                                       "and repetitions interleaved across environments, and store "
                                       "samples, raw outputs and metadata in OUT/<run-id>/.")
    run.add_argument("--suite", default=None, help="suite name from workloads/suites/ (default: quick)")
    run.add_argument("--env", type=_csv, default=None, metavar="NAME[,NAME...]",
                     help="environments to run in (default: the suite's, else every one available here "
                          "that is not marked by_default: false in environments.yaml)")
    run.add_argument("--reps", type=REPS, default=None, metavar="N",
                     help="measured repetitions per cell (default: the suite's); warm-ups are extra")
    run.add_argument("--target-ci", type=_number(float, 1e-6, 100), default=None, metavar="PCT",
                     help="after the repetitions, keep adding rounds of one repetition to every cell whose "
                          "headline number's 95 %% confidence interval is wider than ±PCT %% of its mean")
    run.add_argument("--max-reps", type=REPS, default=None, metavar="N",
                     help="with --target-ci: stop a cell at N repetitions (default: 10, the study's n)")
    run.add_argument("--profile", choices=config.PROFILES, default=None,
                     help="size profile: quick (a 2-core machine, minutes) or lab (the study's scale); "
                          "default: the suite's")
    run.add_argument("--out", type=Path, default=Path("results"), help="results folder (default: results)")
    run.add_argument("--run-id", default=None, help="name of the run folder (default: time-suite-random)")
    run.add_argument("--seed", type=_number(int, 0, 2**63 - 1), default=None, help="seed of the interleaving order (recorded)")
    run.add_argument("--resume", default=None, metavar="RUN_ID",
                     help="finish an interrupted or killed run in OUT/RUN_ID: remove what it left, "
                          "provision again, run only its missing repetitions, with its own settings")
    run.add_argument("--retry-failed", action="store_true",
                     help="with --resume: also measure again the repetitions that failed for a backend "
                          "reason (a daemon gone, a container removed, a guest lost) or because their tool "
                          "was paused (SIGSTOP), in a complete run too")
    run.add_argument("--allow-tcg", action="store_true",
                     help="where KVM cannot run a guest, run the kvm environments under QEMU's TCG "
                          "emulation instead of refusing them; every such sample says accel=tcg")
    run.add_argument("--client-host", default=None, metavar="[USER@]HOST",
                     help="run the clients of client/server workloads (netperf, redis-benchmark, sysbench) "
                          "on this other host, reached over SSH by key (batch mode, one multiplexed "
                          "connection); servers then listen on, or are published on, this host's address "
                          "facing it instead of 127.0.0.1. Latency and throughput include the wire; "
                          "netperf's CPU-per-byte counts this host's CPU only (the server side). "
                          "kvm-bridge cannot serve it")
    run.add_argument("--ssh-option", action="append", default=None, metavar="KEY=VALUE",
                     help="an ssh_config option for reaching --client-host, passed as `ssh -o` "
                          "(repeatable), e.g. IdentityFile=KEY, UserKnownHostsFile=FILE, Port=N")
    run.add_argument("--pass-env", action="append", default=None, metavar="NAME[,NAME...]",
                     help="pass this variable of your shell to every tool, in every environment alike "
                          "(repeatable; recorded in run.json). Without it no tool sees any variable of the "
                          "caller: each gets only PATH, HOME, LANG, LC_ALL and TZ as bench declares them")
    run.add_argument("--allow-mismatch", action="store_true",
                     help="run even when an environment's execution context differs from native's in "
                          "something that decides a result (a binary, a library, the BLAS kernel, a "
                          "variable, a limit); the affected samples are marked parity_ok=false")
    run.add_argument("--scratch", type=Path, default=Path("/var/tmp"),
                     help="where environments keep data files such as fio's (default: /var/tmp); "
                          "it should be on the disk under test")

    img = verbs.add_parser("image", help="build or show the workload image (Docker image, VM disk and kernel)",
                           description="The workload image is made from Debian packages with debootstrap "
                                       "and cached under the hash of its recipe; `build` does nothing "
                                       "when it is already there.")
    img_verbs = img.add_subparsers(dest="image_verb", metavar="ACTION")
    img_verbs.required = True
    build = img_verbs.add_parser("build", help="build the image if it is missing")
    build.add_argument("--force", action="store_true", help="rebuild even if it exists")
    img_verbs.add_parser("list", help="show the recipe, the cached root file system and Docker images")

    clean = verbs.add_parser("cleanup", help="remove what killed runs left behind",
                             description="Find what runs left, each environment kind its own (Docker's "
                                         "labelled containers, volumes and networks and a run's second dockerd "
                                         "with its bridge; a swarm; libvirt domains and their disks; Podman's "
                                         "labelled containers, volumes and service), the run's network "
                                         "namespaces, host scratch folders named after a run and the tools "
                                         "still running in them, and remove them. "
                                         "A run in progress (its writer holds <run>/.lock) is left "
                                         "alone: named, never touched; --run-id of one is refused.")
    clean.add_argument("--run-id", default=None, help="only this run's leftovers")
    clean.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    clean.add_argument("--scratch", type=Path, default=Path("/var/tmp"),
                       help="the --scratch folder runs used (default: /var/tmp)")

    rep = verbs.add_parser("report", help="write an HTML report of one or more runs",
                           description="Statistics (mean, SD, 95 % intervals, ratio to native with its "
                                       "interval, significance), tables and figures of one or more runs, "
                                       "as one self-contained HTML file. Runs are pooled per environment.")
    rep.add_argument("runs", nargs="+", metavar="RUN", help="run folder, or run id under --out")
    rep.add_argument("-o", "--output", type=Path, default=Path("report.html"), metavar="FILE",
                     help="the HTML file to write (default: report.html)")
    _results_folder(rep)

    cmp = verbs.add_parser("compare", help="compare two runs cell by cell; exit 1 on a significant regression",
                           description="Per cell (environment, workload, sweep point) and metric: the "
                                       "change from RUN_A to RUN_B, its 95 % interval and its significance, "
                                       "and the cells only one run has. Exit status 1 when a cell's headline "
                                       "metric (its tool's first, marked *) got significantly worse by more "
                                       "than --threshold percent: usable as a CI gate. Other metrics are "
                                       "flagged `worse` the same way but do not count.")
    cmp.add_argument("run_a", metavar="RUN_A", help="the reference run (folder, or run id under --out)")
    cmp.add_argument("run_b", metavar="RUN_B", help="the run to check against it")
    cmp.add_argument("--threshold", type=_number(float, 0, 1000), default=5.0, metavar="PCT",
                     help="smallest worse-direction change of a headline metric counted as a regression "
                          "(default: 5)")
    cmp.add_argument("--all", action="store_true", help="list every metric of every cell, not only changed ones")
    _results_folder(cmp, writes_a_file=False)

    exp = verbs.add_parser("export", help="write one or more runs' samples as CSV, Parquet or JSON lines",
                           description="The tidy samples of bench.load() (one row per sample, parameters as "
                                       "param_* and the environment's variant as env_* columns, timestamps "
                                       "as ISO 8601 UTC) as a file for other tools.")
    exp.add_argument("runs", nargs="+", metavar="RUN", help="run folder, or run id under --out")
    exp.add_argument("--format", choices=("csv", "parquet", "jsonl"), default="csv",
                     help="file format (default: csv; parquet needs pyarrow)")
    exp.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                     help="the file to write (default: RUN_ID.FORMAT in the current folder)")
    _results_folder(exp)

    doc = verbs.add_parser("doctor", help="check what this host can run, and what would spoil measurements",
                           description="One line per check (OK, WARN, FAIL, and the fix): dockerd, libvirtd, "
                                       "whether KVM really runs a guest, the workload image, each workload's "
                                       "programs on the host, and noise sources (CPU governor, turbo, swap, "
                                       "other load, transparent hugepages, running inside a VM). Exit status "
                                       "1 when the host environment lacks something it needs; warnings alone "
                                       "do not fail.")
    doc.add_argument("--json", action="store_true", help="print the checks as JSON")
    tuning = doc.add_mutually_exclusive_group()
    tuning.add_argument("--tune", action="store_true",
                        help="set every CPU's governor to performance (old values kept for --reset)")
    tuning.add_argument("--reset", action="store_true", help="restore the governors --tune changed")

    lst = verbs.add_parser("list", help="show suites, workloads and environments, and what runs here",
                           description="Show suites, the workload catalogue and environments with whether "
                                       "each is available here: one line each, within 100 columns. --long "
                                       "adds descriptions, workload parameters for a profile and why an "
                                       "environment is or is not available; --json prints all of it.")
    lst.add_argument("section", nargs="?", choices=LIST_SECTIONS, metavar="SECTION",
                     help=f"only this section: {', '.join(LIST_SECTIONS)}")
    lst.add_argument("--available", action="store_true",
                     help="only the environments that can run here")
    detail = lst.add_mutually_exclusive_group()
    detail.add_argument("--long", action="store_true",
                        help="descriptions, parameters and availability reasons under each name")
    detail.add_argument("--json", action="store_true",
                        help="one JSON document with every detail, availability and its reason")
    lst.add_argument("--profile", choices=config.PROFILES, default="quick",
                     help="workload parameters for this profile (default: quick)")
    lst.add_argument("--allow-tcg", action="store_true",
                     help="count kvm environments as available under TCG emulation where KVM cannot run")
    return parser


def cmd_run(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    from . import plan
    from .runner import Runner

    resume = None
    if args.resume:
        given = [flag for flag, value in (("--suite", args.suite), ("--env", args.env), ("--reps", args.reps),
                                          ("--profile", args.profile), ("--run-id", args.run_id),
                                          ("--seed", args.seed), ("--target-ci", args.target_ci),
                                          ("--max-reps", args.max_reps), ("--client-host", args.client_host),
                                          ("--ssh-option", args.ssh_option),
                                          ("--pass-env", args.pass_env)) if value is not None]
        if args.allow_mismatch:
            given.append("--allow-mismatch")
        if given:
            raise BenchError(f"--resume runs with the interrupted run's own settings; drop {', '.join(given)}")
        p, options, resume = plan.resume(catalogue, args.out, args.resume, retry_failed=args.retry_failed)
    else:
        if args.retry_failed:
            raise BenchError("--retry-failed measures again what a run's environments failed: give the run "
                             "with --resume RUN_ID")
        options = plan.RunOptions(suite="quick" if args.suite is None else args.suite, environments=args.env, repetitions=args.reps,
                             profile=args.profile, out=args.out, run_id=args.run_id, seed=args.seed,
                             scratch=args.scratch, allow_tcg=args.allow_tcg,
                             target_ci=args.target_ci, max_reps=args.max_reps,
                             client_host=args.client_host, ssh_options=tuple(args.ssh_option or ()),
                             context=_passed_context(args.pass_env), allow_mismatch=args.allow_mismatch)
        if args.ssh_option and not args.client_host:
            raise BenchError("--ssh-option is for reaching --client-host; give --client-host [USER@]HOST too")
        p = plan.resolve(catalogue, options)
    for name, why in p.skipped_environments.items():   # wrapped, not cut: the reason matters whole
        print(textwrap.fill(f"skipping {name}: {why}", text.width(), subsequent_indent="  ",
                            break_on_hyphens=False), file=sys.stderr)
    for (name, workload), why in p.left_out.items():
        print(textwrap.fill(f"not running {workload} in {name}: {why}", text.width(), subsequent_indent="  ",
                            break_on_hyphens=False), file=sys.stderr)
    print(textwrap.fill(f"{'resuming' if resume else 'run'} {p.run_id}: suite {p.suite} ({p.profile}), "
                        f"{len(p.workloads)} workloads x {len(p.environments)} environments "
                        f"({', '.join(p.environments)}), {p.repetitions} repetitions"
                        + (f"; clients on {p.client.destination}" if p.client else ""), text.width(),
                        subsequent_indent="  ", break_long_words=False, break_on_hyphens=False), file=sys.stderr)
    runner = Runner(p, options, resume=resume)
    finish = f"bench run --out {args.out} --resume {p.run_id}"
    try:
        store = runner.execute()
    except KeyboardInterrupt:
        print(f"interrupted: everything torn down; finished repetitions are in {runner.store.path}; "
              f"finish it with: {finish}", file=sys.stderr)
        return interrupted_status()
    except BenchError as e:
        if not runner.measuring:
            raise   # refused before anything was measured: exit status 2
        # It ran, and then could not go on (its results' disk full): not "nothing was run".
        print(f"bench: error: {e}\nthe run stopped: everything torn down; finished repetitions are in "
              f"{runner.store.path}; once that is fixed, finish it with: {finish}", file=sys.stderr)
        return 1
    try:
        with interrupts.as_interrupt():
            print_summary(store)
            write_run_report(store.path)
    except KeyboardInterrupt:
        print(f"interrupted while writing the report: the run is {store.manifest().get('status')} in "
              f"{store.path}; render it with: bench report {store.path} -o {store.path / 'report.html'}",
              file=sys.stderr)
        return interrupted_status()
    return 0 if runner.failures == 0 else 1


def interrupted_status() -> int:
    """128 + the signal that stopped bench, as a shell says it: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + (interrupts.received[0] if interrupts.received else signal.SIGINT)


def _passed_context(groups: list[str] | None):
    """The declared context with the variables --pass-env names, as this shell has them."""
    from .environments.context import ExecutionContext

    try:
        names = [n for group in groups or () for n in _csv(group)]
    except argparse.ArgumentTypeError as e:
        raise BenchError(f"--pass-env: {e}") from None
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise BenchError(f"--pass-env: {', '.join(twice)} given twice")
    for name in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise BenchError(f"--pass-env {name!r}: not a variable name")
        if name not in os.environ:
            raise BenchError(f"--pass-env {name}: it is not set in this shell; set it, or drop --pass-env {name}")
    return ExecutionContext.passing(names)


def write_run_report(folder: Path) -> None:
    """<run folder>/report.html; a report that cannot render must not cost the run: warn only."""
    # Serial figures here: worker processes forked from a run that has talked to dockerd and
    # libvirtd gain little on a small report and are not worth any risk at the end of a run.
    if not settings.current().workers:
        settings.use(dataclasses.replace(settings.current(), workers=1))
    try:
        from .report import render_runs

        print(f"report: {render_runs([folder], folder / 'report.html')}", file=sys.stderr)
    except Exception as e:  # noqa: BLE001 - the samples are safe on disk whatever went wrong here
        print(f"bench: warning: the report was not written ({type(e).__name__}: {e}); "
              f"try again with: bench report {folder} -o {folder / 'report.html'}", file=sys.stderr)


def print_summary(store: RunStore) -> None:
    """Mean and spread of each workload's headline metric (its first), per environment; for a
    sweep (Redis clients, MariaDB threads), at the headline's own point of the sweep."""
    manifest = store.manifest()
    headline: dict[str, tuple[str, str]] = {}  # workload -> (metric, point)
    values: dict[tuple[str, str], list[float]] = {}
    units: dict[str, str] = {}
    emulated = set()
    for s in store.samples():
        if s.variant.get("accel") == "tcg":
            emulated.add(s.environment)
        if s.workload == "provision":
            continue
        # A sweep point: the sample's values of the parameters the run recorded as swept (a run
        # made before they were recorded: where its parameters differ from the workload's own).
        recorded = manifest["workloads"].get(s.workload, {})
        if "sweep_keys" in recorded:
            point = " ".join(f"{k}={s.params[k]}" for k in recorded["sweep_keys"] if k in s.params)
        else:
            own = recorded.get("params", {})
            point = " ".join(f"{k}={v}" for k, v in s.params.items() if own.get(k) != v)
        headline.setdefault(s.workload, (s.metric, point))
        if (s.metric, point) == headline[s.workload]:
            values.setdefault((s.workload, s.environment), []).append(s.value)
            units[s.workload] = s.unit
    # Suite order, and the environments in the order they were asked for (native first).
    workloads = manifest["workload_order"]
    envs = manifest["environment_order"]
    values = dict(sorted(values.items(), key=lambda kv: (workloads.index(kv[0][0]), envs.index(kv[0][1]))))
    columns = text.width()
    for line in _summary_table(values, headline, units, emulated, columns):
        print(line)
    if emulated:
        print("\n" + textwrap.fill(f"(TCG): {', '.join(sorted(emulated))} ran under QEMU's TCG binary translation: "
                                   f"emulated, not KVM measurements", columns, break_on_hyphens=False))
    failures = store.failures()
    if failures:
        print(f"\n{len(failures)} failed repetitions (details in {store.path / 'failures.jsonl'}):")
        for f in failures[:10]:
            print(text.fit(f"  {f['environment']} · {f['workload']} · rep {f['repetition']}: {f['reason']}", columns))
    # Paths are never cut, a reader copies them: a long one goes on a line of its own instead.
    print("\n" + textwrap.fill(f"{manifest['status']} in {manifest['wall_seconds']:.0f} s: {manifest['samples']} "
                               f"samples in {store.path}", columns, break_long_words=False, break_on_hyphens=False))
    print(f"pandas: bench.load({str(store.path)!r})")


def _summary_table(values: dict[tuple[str, str], list[float]], headline: dict[str, tuple[str, str]],
                   units: dict[str, str], emulated: set[str], columns: int) -> list[str]:
    """Per workload a line naming its headline metric, then mean, SD and n per environment."""
    labels = {env: f"{env} (TCG)" if env in emulated else env for _, env in values}
    ew = max([len("environment"), *map(len, labels.values())])
    lines = ["", "each workload's headline metric (its tool's first), per environment:",
             text.fit(f"  {'environment':<{ew}}  {'mean':>8}  {'sd':>8}  {'n':>3}", columns)]
    workload = None
    for (w, env), vals in values.items():
        if w != workload:
            workload = w
            metric, point = headline[w]
            lines.append(text.fit(f"{w} · {metric} ({units[w]})" + (f" @ {point}" if point else ""), columns))
        sd = statistics.stdev(vals) if len(vals) > 1 else float("nan")
        lines.append(text.fit(f"  {labels[env]:<{ew}}  {text.human(statistics.fmean(vals)):>8}  "
                              f"{text.human(sd):>8}  {len(vals):>3}", columns))
    return lines


# What a file a verb writes is named like; a folder of results is not (see _check_results_folder).
FILE_SUFFIXES = (".html", ".htm", ".csv", ".parquet", ".jsonl", ".json")


def _check_results_folder(out: Path, output_example: str | None) -> None:
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
    from .store import MANIFEST, check_run_id

    if (Path(name) / MANIFEST).exists():
        return Path(name)
    try:
        run_id = check_run_id(name)
    except BenchError:  # not a run id, so it was meant as a path: say that it is not a run folder
        run_id = None
    if run_id and (out / run_id / MANIFEST).exists():
        return out / run_id
    raise BenchError(f"no run folder {name!r} (neither a folder with run.json nor a run id in {out}/)")


def _need_report_packages() -> None:
    missing = [m for m in ("scipy", "matplotlib", "jinja2") if importlib.util.find_spec(m) is None]
    if missing:
        raise BenchError(f"the report needs {', '.join(missing)}: run scripts/setup.sh "
                         f"(it installs bench's dependencies into .venv)")


def cmd_report(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    _need_report_packages()
    from .report import render_runs

    _check_results_folder(args.out, "report.html")
    folders = [resolve_run(r, args.out) for r in args.runs]
    with _warnings_said(only=SKIPPED):  # the report's own notes hold every warning
        print(f"report: {render_runs(folders, args.output)}")
    return 0


SKIPPED = "unreadable record"  # the store's warning of records it could not read


@contextlib.contextmanager
def _warnings_said(only: str | None = None):
    """The store's warnings, said on stderr as one line each (`only`: those that contain it)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if only is None or only in str(w.message):
            print(f"bench: warning: {w.message}", file=sys.stderr)


def cmd_compare(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    _need_report_packages()
    from . import stats
    from .store import load

    if args.threshold < 0:
        raise BenchError(f"--threshold must be 0 or more, not {args.threshold:g}")
    _check_results_folder(args.out, None)
    a, b = resolve_run(args.run_a, args.out), resolve_run(args.run_b, args.out)
    with _warnings_said(only=SKIPPED):  # an incomplete run is compared on what it has, unsaid
        before, after = load(a), load(b)
    if before.empty or after.empty:
        raise BenchError(f"{a if before.empty else b}: no samples to compare")
    table = stats.compare_runs(before, after)
    if table.empty:
        raise BenchError(f"{a.name} and {b.name} have no cell (environment, workload, metric) in common")
    # The reference run's headlines first: a workload's headline is what it was compared on.
    table = _judge(table, {**stats.headline_metrics(after), **stats.headline_metrics(before)}, args.threshold)
    columns = text.width()
    listed = _listed(table, args.all)
    for line in _compare_lines(listed, columns):
        print(line)
    print()
    for paragraph in _compare_footer(table, listed, args.threshold, (a.name, b.name),
                                     _one_run_only(before, after)):
        print(textwrap.fill(paragraph, columns, break_on_hyphens=False, subsequent_indent="  "))
    return 1 if table["regression"].any() else 0


def _judge(table, headlines: dict[str, str], threshold: float):
    """Which rows count. A cell (environment, workload, sweep point) regresses when its headline
    metric got significantly worse beyond the threshold; its other metrics (tail latencies, CPU
    per byte) are flagged `worse` the same way but do not set the exit status: between two runs
    of one build a p99 drifts by tens of percent where the headline does not."""
    headline = table["metric"] == table["workload"].map(headlines)
    beyond = table["significant"] & (table["overhead_pct"] > threshold)
    return table.assign(headline=headline, regression=headline & beyond, worse=~headline & beyond,
                        better=table["significant"] & (table["overhead_pct"] < -threshold),
                        changed=table["significant"] | (table["overhead_pct"].abs() > threshold))


def _listed(table, every: bool) -> list[list]:
    """The rows to print, per cell: every row, or the changed ones with their cell's headline
    row first (a changed tail latency reads differently beside a steady headline)."""
    from .stats import NATIVE

    groups = []
    for _, cell in table.groupby(["environment", "workload", "point"], sort=False):
        if not every and not cell["changed"].any():
            continue
        rows = cell if every else cell[cell["changed"] | cell["headline"]]
        groups.append(sorted(rows.itertuples(), key=lambda r: not r.headline))  # stable: headline first
    # Workloads in run order; within one, native first, then the same environment order each time.
    workloads = list(dict.fromkeys(table["workload"]))
    return sorted(groups, key=lambda g: (workloads.index(g[0].workload), g[0].environment != NATIVE,
                                         g[0].environment))


def _p_value(p: float) -> str:
    return "–" if p != p else "<0.001" if p < 0.001 else f"{p:.3f}"


def _interval(r) -> tuple[str, str] | str:
    """The interval's two ends, or why there is none."""
    if min(r.n_a, r.n_b) < 2:  # one repetition says nothing of the spread: no honest interval
        return f"no interval with n = {min(r.n_a, r.n_b)}"
    if r.overhead_low != r.overhead_low or r.overhead_high != r.overhead_high:
        return "no interval"
    if abs(r.overhead_low) == float("inf") or abs(r.overhead_high) == float("inf"):
        return "unbounded interval"  # Fieller: A's mean is not clearly away from zero
    return text.percent(r.overhead_low), text.percent(r.overhead_high)


def _flags(r) -> str:
    verdict = ("REGRESSION" if r.regression else "worse" if r.worse else "better" if r.better
               else "significant" if r.significant else "")
    return " ".join(f for f in (verdict, "noisy" * bool(r.noisy), "few" * bool(r.few)) if f)


def _metric_label(metric: str, headline: bool, width: int | None = None) -> str:
    """The metric's name, marked * when it is its cell's headline; cut to width, the mark kept."""
    mark = " *" if headline else ""
    return (metric if width is None else text.fit(metric, width - len(mark))) + mark


def _compare_row(r) -> dict:
    """One metric's line of `bench compare`, as the texts of its columns."""
    return {"metric": _metric_label(r.metric, r.headline), "name": r.metric, "headline": r.headline,
            "unit": r.unit, "A": text.human(r.mean_a), "B": text.human(r.mean_b),
            "change": text.percent(r.overhead_pct), "interval": _interval(r), "p": _p_value(r.p), "flags": _flags(r),
            "one_repetition": min(r.n_a, r.n_b) < 2}


def _compare_lines(listed: list[list], columns: int) -> list[str]:
    """A header, then per cell a line naming it and one line per metric, in columns sized to
    what is listed and cut at the terminal's width."""
    cells = [[_compare_row(r) for r in group] for group in listed]
    rows = [row for cell in cells for row in cell]
    ends = [row["interval"] for row in rows if isinstance(row["interval"], tuple)]
    low = max((len(lo) for lo, _ in ends), default=0)
    high = max((len(hi) for _, hi in ends), default=0)
    for row in rows:
        if isinstance(row["interval"], tuple):   # the ends aligned on their own columns, comma under comma
            row["interval"] = f"[{row['interval'][0]:>{low}}, {row['interval'][1]:>{high}}]"
        if row.pop("one_repetition"):            # no interval and no p: the reason takes both columns
            row["p"] = None
    head = {"metric": "metric", "unit": "unit", "A": "A", "B": "B", "change": "change", "interval": "95% interval",
            "p": "p", "flags": ""}
    w = {k: max(len(row[k]) for row in [head, *rows] if row["p"] is not None or k not in ("interval", "p"))
         for k in head}
    # Too wide for the terminal: narrow the metric names, not the numbers or the verdict at the end.
    excess = sum(w.values()) + 16 - columns   # 16: the indent and the spaces between columns
    if excess > 0:
        w["metric"] = max(12, w["metric"] - excess)
        for row in rows:
            row["metric"] = _metric_label(row["name"], row["headline"], w["metric"])

    def line(row: dict) -> str:
        tail = (f"{row['interval']:<{w['interval'] + 2 + w['p']}}" if row["p"] is None
                else f"{row['interval']:<{w['interval']}}  {row['p']:>{w['p']}}")
        return text.fit(f"  {row['metric']:<{w['metric']}} {row['unit']:<{w['unit']}}  {row['A']:>{w['A']}}  "
                        f"{row['B']:>{w['B']}}  {row['change']:>{w['change']}}  {tail}  {row['flags']}", columns)

    out = [line(head)]
    for group, cell in zip(listed, cells):
        first = group[0]
        out.append(text.fit(" · ".join(p for p in (first.environment, first.workload, first.point) if p), columns))
        out += [line(row) for row in cell]
    return out


def _compare_footer(table, listed: list[list], threshold: float, names: tuple[str, str],
                    one_run_only: tuple[list, list]) -> list[str]:
    n_cells = table.groupby(["environment", "workload", "point"], sort=False).ngroups
    n_listed = sum(map(len, listed))
    paragraphs = [
        f"{n_cells} cells (environment, workload, sweep point) in both runs, {len(table)} metrics in all; "
        f"{len(table) - n_listed} unchanged not listed (--all lists them).",
        "change: B against A in the worse direction (+ is worse, whatever the metric). * marks a cell's "
        "headline metric (its tool's first): only its regressions count toward the exit status; other "
        "metrics significantly worse beyond the threshold are flagged worse.",
        f"{int(table['significant'].sum())} significant (alpha 0.05{_permutation_floor(table)}).",
        f"{int(table['regression'].sum())} regression(s) beyond {threshold:g} % on headline metrics; "
        f"{int(table['worse'].sum())} other metric(s) worse beyond it, not counted.",
    ]
    for side, name, only in zip("AB", names, one_run_only):
        if only:
            paragraphs.append(f"only in {side} ({name}), not compared: "
                              + ", ".join(f"{env} · {workload}" for env, workload in only))
    return paragraphs


def _permutation_floor(table) -> str:
    """Where the permutation test cannot reach alpha at these repetitions, say who decided."""
    tested = table[(table["n_a"] >= 2) & (table["n_b"] >= 2)]
    if tested.empty or tested["p_min"].max() <= 0.05:
        return ""
    worst = tested.loc[tested["p_min"].idxmax()]
    return (f"; with {worst['n_a']} + {worst['n_b']} repetitions the permutation p cannot go below "
            f"{worst['p_min']:.3g}: there the Fieller interval decides")


def _one_run_only(before, after) -> tuple[list, list]:
    """The cells (environment, workload) that one run has and the other has not, in run order."""
    a = dict.fromkeys(zip(before["environment"], before["workload"]))
    b = dict.fromkeys(zip(after["environment"], after["workload"]))
    return [c for c in a if c not in b], [c for c in b if c not in a]


def cmd_export(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    from . import export
    from .store import load

    _check_results_folder(args.out, f"samples{export.SUFFIX[args.format]}")
    folders = [resolve_run(r, args.out) for r in args.runs]
    with _warnings_said():  # an incomplete run is exported with what it has, and said so
        frame = load(*folders)
    if frame.empty:
        raise BenchError(f"{', '.join(map(str, folders))}: no samples to export")
    name = folders[0].name if len(folders) == 1 else "samples"
    out = args.output or Path(name + export.SUFFIX[args.format])
    export.write(frame, args.format, out)
    print(f"{len(frame)} samples, {len(frame.columns)} columns -> {out}")
    return 0


def cmd_doctor(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    from . import doctor

    if args.tune or args.reset:
        print(doctor.tune() if args.tune else doctor.reset())
        return 0
    checks = doctor.run_checks()
    status = doctor.exit_status(checks)
    if args.json:
        print(doctor.as_json(checks))
        return status
    group = None
    for check in checks:
        if check.group != group:  # a heading per group, a blank line between groups
            print(f"\n{check.group}:" if group else f"{check.group}:")
            group = check.group
        # A long reason (why KVM cannot run) wraps under its own column, whole.
        print(textwrap.fill(f"  {check.line()}", text.width(), subsequent_indent=" " * 31,
                            break_long_words=False, break_on_hyphens=False))
    failed = [c.name for c in checks if c.status == doctor.FAIL]
    warned = sum(c.status == doctor.WARN for c in checks)
    if failed:
        print(f"\nthe host environment cannot run: {', '.join(failed)} missing")
    else:
        print(f"\nthe host environment can run every workload; {warned} warning(s)")
    return status


def cmd_list(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    if args.available and args.section not in (None, "environments"):
        raise BenchError(f"--available chooses environments; there is nothing to choose among {args.section}: "
                         f"bench list environments --available")
    sections = [args.section] if args.section else list(LIST_SECTIONS)
    listing = _listing(catalogue, sections, args.profile, args.allow_tcg)
    if args.json:
        if args.available:
            listing["environments"] = [e for e in listing["environments"] if e["available"]]
        print(json.dumps({"profile": args.profile, **listing}, indent=2, default=str))
        return 0
    columns = text.width()
    render = {"suites": _suite_lines, "workloads": _workload_lines, "environments": _environment_lines}
    blocks = ["\n".join(render[section](listing[section], args, columns)) for section in sections]
    print("\n\n".join(blocks))
    return 0


def _listing(catalogue: config.Catalogue, sections: list[str], profile: str,
             allow_tcg: bool) -> dict[str, list[dict]]:
    """What `bench list` shows, as plain data: the JSON document, and what the text is made from.
    Availability is probed only when environments are asked for (it talks to the daemons)."""
    from .environments import KINDS
    from .workloads import TOOLS

    listing: dict[str, list[dict]] = {}
    if "suites" in sections:
        listing["suites"] = [{"name": name, **s.model_dump()} for name, s in sorted(catalogue.suites.items())]
    if "workloads" in sections:
        listing["workloads"] = [catalogue.workload(name, profile).to_json()
                                for name in sorted(catalogue.workloads)]
    if "environments" in sections:
        envs = []
        for name, e in sorted(catalogue.environments.items()):
            variant = catalogue.variant(name, profile)
            ok, why = KINDS[e.kind].availability(variant, allow_tcg=allow_tcg)
            refusals = {tool: KINDS[e.kind].refusal(variant, workload) for tool, workload in sorted(TOOLS.items())}
            envs.append({"name": name, "kind": e.kind, "available": ok, "reason": why,
                         "refuses": {tool: str(r) for tool, r in refusals.items() if r is not None},
                         "description": e.description, "baseline": e.baseline or None,
                         "dimension": e.dimension or None, "by_default": e.by_default,
                         "variant": variant.model_dump(mode="json", exclude_unset=True)})
        listing["environments"] = envs
    return listing


def _name_width(items: list[dict]) -> int:
    """One column for a section's names, so the long fio names line up with the short ones."""
    return max((len(i["name"]) for i in items), default=0)


def _details(paragraphs: list[str], columns: int) -> list[str]:
    """--long details under a name: each paragraph wrapped, continuation lines indented further.
    Names hold hyphens (docker-nat): lines break at spaces only, unless a word is wider than a line."""
    return [line for p in paragraphs if p
            for line in textwrap.wrap(p, columns, initial_indent=" " * 6, subsequent_indent=" " * 8,
                                      break_on_hyphens=False)]


def _suite_lines(suites: list[dict], args: argparse.Namespace, columns: int) -> list[str]:
    nw = _name_width(suites)
    sizes = [f"{s['profile']}, {s['repetitions']} reps" for s in suites]
    sw = max(map(len, sizes), default=0)
    lines = ["suites:"]
    for s, size in zip(suites, sizes):
        if not args.long:
            lines.append(text.fit(f"  {s['name']:<{nw}}  {size:<{sw}}  {', '.join(s['workloads'])}", columns))
            continue
        lines.append(f"  {s['name']:<{nw}}  {size}")
        lines += _details([s["description"], f"workloads: {', '.join(s['workloads'])}",
                           s["environments"] and f"in: {', '.join(s['environments'])}",
                           *(f"{w} only in: {', '.join(envs)}" for w, envs in s["only"].items())], columns)
    return lines


def _workload_lines(workloads: list[dict], args: argparse.Namespace, columns: int) -> list[str]:
    nw = _name_width(workloads)
    tw = max((len(w["tool"]) for w in workloads), default=0)
    lines = [f"workloads (parameters for the {args.profile} profile):" if args.long else "workloads:"]
    for w in workloads:
        if not args.long:
            lines.append(text.fit(f"  {w['name']:<{nw}}  {w['tool']:<{tw}}  {w['description']}", columns))
            continue
        params = " ".join(f"{k}={v}" for k, v in w["params"].items() if v is not None)
        lines.append(f"  {w['name']:<{nw}}  {w['tool']}")
        runs = f"{w['warmups']} warm-up(s), timeout {w['timeout']:.0f} s"
        lines += _details([w["description"], f"{params}; {runs}" if params else runs], columns)
    return lines


def _environment_lines(every: list[dict], args: argparse.Namespace, columns: int) -> list[str]:
    envs = [e for e in every if e["available"]] if args.available else every
    nw = _name_width(envs)
    kw = max((len(e["kind"]) for e in envs), default=0)
    lines = ["environments:"]
    for e in envs:
        state = "available" if e["available"] else "NOT AVAILABLE"
        if not args.long:
            lines.append(text.fit(f"  {e['name']:<{nw}}  {e['kind']:<{kw}}  {state:<13}  {e['description']}",
                                  columns))
            continue
        variant = e["baseline"] and (f"variant of {e['baseline']} ({e['dimension']})"
                                     + ("" if e["by_default"] else "; runs only when named (--env or a suite)"))
        lines.append(f"  {e['name']:<{nw}}  {e['kind']}")
        reasons: dict[str, list[str]] = {}   # one line per reason: Compose refuses most tools alike
        for tool, why in e["refuses"].items():
            reasons.setdefault(why, []).append(tool)
        refused = [f"does not run {', '.join(tools)}: {why}" for why, tools in reasons.items()]
        lines += _details([f"{state}: {e['reason']}", e["description"], variant, *refused], columns)
    if not args.long:
        ready = sum(e["available"] for e in every)
        lines.append(f"\n{ready} of {len(every)} available here; --long says why the others are not")
    return lines


def cmd_image(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    """Each environment kind makes (build) or shows what it needs of the one recipe's image."""
    from . import image
    from .environments import KINDS

    recipe = image.recipe()
    if args.image_verb == "build":
        refused = []
        for kind in KINDS.values():
            try:
                line = kind.prepare_image(recipe, force=args.force)
            except BenchError as e:  # one kind that cannot (no dockerd) does not stop the others
                refused.append(str(e))
                continue
            if line:
                print(line)
        if refused:
            raise BenchError("; ".join(refused))
        return 0
    print(f"recipe {recipe.digest}: Debian {recipe.release} ({','.join(recipe.components)}) from {recipe.mirror}")
    print(f"  packages: {' '.join(recipe.packages)}")
    size = f"{recipe.rootfs.stat().st_size / 2**20:.0f} MiB" if recipe.rootfs.exists() else "not built"
    print(f"root file system {recipe.rootfs}: {size}")
    for kind in KINDS.values():
        for line in kind.image_status(recipe):
            print(line)
    return 0
    print(f"recipe {recipe.digest}: Debian {recipe.release} ({','.join(recipe.components)}) from {recipe.mirror}")
    print(f"  packages: {' '.join(recipe.packages)}")
    size = f"{recipe.rootfs.stat().st_size / 2**20:.0f} MiB" if recipe.rootfs.exists() else "not built"
    print(f"root file system {recipe.rootfs}: {size}")
    for kind in sorted(KINDS.values(), key=lambda kind: kind.kind == "docker"):  # VM disks, then Docker's
        for line in kind.image_status(recipe):
            print(line)
    return 0


def cmd_cleanup(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    from . import cleanup, live
    from .store import check_run_id

    if args.run_id:
        check_run_id(args.run_id)
        alive = live.holder(args.run_id)
        if alive is not None:
            raise BenchError(f"{alive}: cleanup leaves a live run alone (its own teardown removes what "
                             f"it made); stop it first if it must go")
    leftovers, spared = cleanup.spare_live(cleanup.find(args.run_id, args.scratch))
    for alive in spared.values():
        print(f"leaving run {alive.run_id} alone: it is in progress (pid {alive.pid}, {alive.folder})")
    if not leftovers:
        print("nothing to clean up")
        return 0
    for leftover in leftovers:
        print(f"{'would remove' if args.dry_run else 'removing'} {leftover.kind} {leftover.name} "
              f"(run {leftover.run_id})")
        if not args.dry_run:
            leftover.remove()
    if not args.dry_run:
        live.prune()   # the registry's links of killed runs
    return 0


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
        verbs = {"run": cmd_run, "list": cmd_list, "image": cmd_image, "cleanup": cmd_cleanup,
                 "report": cmd_report, "compare": cmd_compare, "export": cmd_export,
                 "doctor": cmd_doctor}
        with interrupts.as_interrupt():   # SIGTERM too: said, and whatever was started stopped
            return verbs[args.verb](args, catalogue)
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


if __name__ == "__main__":
    sys.exit(main())
