"""`bench run`: a suite's workloads in each environment, and its results stored; `--resume`
finishes an interrupted run with its own plan."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import textwrap
from pathlib import Path

from .. import config, interrupts, limits, plan, settings, text
from ..errors import BenchError
from ..store import RunStore
from . import tables
from .common import interrupted_status, limited, names

NAME = "run"
HELP = "run a suite and store its results"
DESCRIPTION = ("Run a suite's workloads in each environment, with warm-ups and repetitions interleaved across "
               "environments, and store samples, raw outputs and metadata in OUT/<run-id>/.")


def arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("--suite", default=None, help="suite name from workloads/suites/ (default: quick)")
    run.add_argument("--env", type=names, default=None, metavar="NAME[,NAME...]",
                     help="environments to run in (default: the suite's, else every one available here "
                          "that is not marked by_default: false in environments.yaml)")
    run.add_argument("--reps", type=limited(limits.REPETITIONS), default=None, metavar="N",
                     help="measured repetitions per cell (default: the suite's); warm-ups are extra")
    run.add_argument("--target-ci", type=limited(limits.TARGET_CI), default=None, metavar="PCT",
                     help="after the repetitions, keep adding rounds of one repetition to every cell whose "
                          "headline number's 95 %% confidence interval is wider than ±PCT %% of its mean")
    run.add_argument("--max-reps", type=limited(limits.MAX_REPS), default=None, metavar="N",
                     help="with --target-ci: stop a cell at N repetitions (default: 10, the study's n)")
    run.add_argument("--profile", choices=config.PROFILES, default=None,
                     help="size profile: quick (a 2-core machine, minutes) or lab (the study's scale); "
                          "default: the suite's")
    run.add_argument("--out", type=Path, default=Path("results"), help="results folder (default: results)")
    run.add_argument("--run-id", default=None, help="name of the run folder (default: time-suite-random)")
    run.add_argument("--seed", type=limited(limits.SEED), default=None, help="seed of the interleaving order (recorded)")
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


# The flags a resumed run takes from its run.json instead: giving one with --resume is refused.
RUN_SETTINGS = (("--suite", "suite"), ("--env", "env"), ("--reps", "reps"), ("--profile", "profile"),
                ("--run-id", "run_id"), ("--seed", "seed"), ("--target-ci", "target_ci"),
                ("--max-reps", "max_reps"), ("--client-host", "client_host"), ("--ssh-option", "ssh_option"),
                ("--pass-env", "pass_env"))


def planned(args: argparse.Namespace, catalogue: config.Catalogue) -> tuple[plan.Plan, RunStore | None]:
    """The plan of a new run, or of the run --resume names with the store it has (else None)."""
    if args.resume:
        given = [flag for flag, key in RUN_SETTINGS if getattr(args, key) is not None]
        if args.allow_mismatch:
            given.append("--allow-mismatch")
        if given:
            raise BenchError(f"--resume runs with the interrupted run's own settings; drop {', '.join(given)}")
        return plan.resume(catalogue, args.out, args.resume, retry_failed=args.retry_failed)
    if args.retry_failed:
        raise BenchError("--retry-failed measures again what a run's environments failed: give the run "
                         "with --resume RUN_ID")
    options = plan.RunOptions(scratch=args.scratch, allow_tcg=args.allow_tcg, target_ci=args.target_ci,
                              max_reps=args.max_reps, context=passed_context(args.pass_env),
                              allow_mismatch=args.allow_mismatch)
    return plan.resolve(catalogue, "quick" if args.suite is None else args.suite, environments=args.env,
                        repetitions=args.reps, profile=args.profile, out=args.out, run_id=args.run_id,
                        seed=args.seed, client_host=args.client_host, ssh_options=tuple(args.ssh_option or ()),
                        options=options), None


def run(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    from ..runner import Runner

    p, resume = planned(args, catalogue)
    say_plan(p, resuming=resume is not None)
    runner = Runner(p, resume=resume)
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


def say_plan(p: plan.Plan, resuming: bool) -> None:
    """What is left out and why, and what runs, on stderr before anything is made."""
    for name, why in p.skipped_environments.items():   # wrapped, not cut: the reason matters whole
        print(textwrap.fill(f"skipping {name}: {why}", text.width(), subsequent_indent="  ",
                            break_on_hyphens=False), file=sys.stderr)
    for (name, workload), why in p.left_out.items():
        print(textwrap.fill(f"not running {workload} in {name}: {why}", text.width(), subsequent_indent="  ",
                            break_on_hyphens=False), file=sys.stderr)
    print(textwrap.fill(f"{'resuming' if resuming else 'run'} {p.run_id}: suite {p.suite} ({p.profile}), "
                        f"{len(p.workloads)} workloads x {len(p.environments)} environments "
                        f"({', '.join(p.environments)}), {p.repetitions} repetitions"
                        + (f"; clients on {p.client.destination}" if p.client else ""), text.width(),
                        subsequent_indent="  ", break_long_words=False, break_on_hyphens=False), file=sys.stderr)


def passed_context(groups: list[str] | None):
    """The declared context with the variables --pass-env names, as this shell has them."""
    from ..environments.context import ExecutionContext

    try:
        passed = [n for group in groups or () for n in names(group)]
    except argparse.ArgumentTypeError as e:
        raise BenchError(f"--pass-env: {e}") from None
    twice = sorted({name for name in passed if passed.count(name) > 1})
    if twice:
        raise BenchError(f"--pass-env: {', '.join(twice)} given twice")
    for name in passed:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise BenchError(f"--pass-env {name!r}: not a variable name")
        if name not in os.environ:
            raise BenchError(f"--pass-env {name}: it is not set in this shell; set it, or drop --pass-env {name}")
    return ExecutionContext.passing(passed)


def write_run_report(folder: Path) -> None:
    """<run folder>/report.html; a report that cannot render must not cost the run: warn only."""
    # Serial figures here: worker processes forked from a run that has talked to dockerd and
    # libvirtd gain little on a small report and are not worth any risk at the end of a run.
    if not settings.current().workers:
        settings.use(dataclasses.replace(settings.current(), workers=1))
    try:
        from ..report import render_runs

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
    for line in tables.summary_table(values, headline, units, emulated, columns):
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
