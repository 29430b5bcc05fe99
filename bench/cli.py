"""The command line: `bench run`, `bench list`, `bench report`, `bench compare`, `bench export`,
`bench doctor`.

Every error a user can cause is one line on stderr and exit status 2; an interrupted run exits
130 after tearing down what it made.
"""

from __future__ import annotations

import argparse
import os
import re
import importlib.util
import statistics
import sys
from pathlib import Path

from . import config
from .errors import BenchError
from .store import RunStore

EXAMPLES = """\
examples:
  bench list                              what can run here
  bench run --suite quick                 the quick suite on every available environment
  bench run --suite quick --env host --reps 5 --out /data/results
  bench run --suite net --env host,docker-nat --client-host root@lab2 --ssh-option IdentityFile=/root/.ssh/lab
                                          clients on a second host, over SSH, as the IBM study did
  bench report RUN_ID -o report.html      one self-contained HTML report of one or more runs
  bench compare RUN_A RUN_B --threshold 5 exit status 1 on a significant regression (a CI gate)
  bench export RUN_ID --format parquet    the samples as a file for pandas, R, DuckDB...
  bench doctor                            what this host can run, and what would spoil measurements
"""


def _csv(text: str) -> list[str]:
    names = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))  # once each
    if not names:
        raise argparse.ArgumentTypeError("expected one or more names separated by commas")
    return names


def _results_folder(parser: argparse.ArgumentParser) -> None:
    """--out for the verbs that take runs by id (report, compare, export)."""
    parser.add_argument("--out", type=Path, default=Path("results"),
                        help="results folder where run ids are looked up (default: results)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench",
        description="Run identical workloads on the bare host, in containers and in VMs, "
                    "and keep every result with its raw output and metadata.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    run.add_argument("--reps", type=int, default=None, metavar="N",
                     help="measured repetitions per cell (default: the suite's); warm-ups are extra")
    run.add_argument("--target-ci", type=float, default=None, metavar="PCT",
                     help="after the repetitions, keep adding rounds of one repetition to every cell whose "
                          "headline number's 95 %% confidence interval is wider than ±PCT %% of its mean")
    run.add_argument("--max-reps", type=int, default=None, metavar="N",
                     help="with --target-ci: stop a cell at N repetitions (default: 10, the study's n)")
    run.add_argument("--profile", choices=config.PROFILES, default=None,
                     help="size profile: quick (a 2-core machine, minutes) or lab (the study's scale); "
                          "default: the suite's")
    run.add_argument("--out", type=Path, default=Path("results"), help="results folder (default: results)")
    run.add_argument("--run-id", default=None, help="name of the run folder (default: time-suite-random)")
    run.add_argument("--seed", type=int, default=None, help="seed of the interleaving order (recorded)")
    run.add_argument("--resume", default=None, metavar="RUN_ID",
                     help="finish an interrupted or killed run in OUT/RUN_ID: remove what it left, "
                          "provision again, run only its missing repetitions, with its own settings")
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
                             description="Find containers, volumes and networks labelled with a run id, "
                                         "a run's second dockerd (daemon-wide Docker variants) with its bridge, "
                                         "and host scratch folders named after one, and remove them. "
                                         "Without --run-id this takes every run's leftovers: do not "
                                         "use it while a run is in progress.")
    clean.add_argument("--run-id", default=None, help="only this run's leftovers")
    clean.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    clean.add_argument("--scratch", type=Path, default=Path("/var/tmp"),
                       help="the --scratch folder runs used (default: /var/tmp)")

    rep = verbs.add_parser("report", help="write an HTML report of one or more runs",
                           description="Statistics (mean, SD, 95 % intervals, ratio to native with its "
                                       "interval, significance), tables and figures of one or more runs, "
                                       "as one self-contained HTML file. Runs are pooled per environment.")
    rep.add_argument("runs", nargs="+", metavar="RUN", help="run folder, or run id under --out")
    rep.add_argument("-o", "--output", type=Path, default=Path("report.html"),
                     help="the HTML file to write (default: report.html)")
    _results_folder(rep)

    cmp = verbs.add_parser("compare", help="compare two runs cell by cell; exit 1 on a significant regression",
                           description="Per cell (environment, workload, metric, sweep point): the change "
                                       "from RUN_A to RUN_B, its 95 % interval and its significance. "
                                       "Exit status 1 when a cell got significantly worse by more than "
                                       "--threshold percent: usable as a CI gate.")
    cmp.add_argument("run_a", metavar="RUN_A", help="the reference run (folder, or run id under --out)")
    cmp.add_argument("run_b", metavar="RUN_B", help="the run to check against it")
    cmp.add_argument("--threshold", type=float, default=5.0, metavar="PCT",
                     help="smallest worse-direction change counted as a regression (default: 5)")
    cmp.add_argument("--all", action="store_true", help="list every cell, not only changed ones")
    _results_folder(cmp)

    exp = verbs.add_parser("export", help="write one or more runs' samples as CSV, Parquet or JSON lines",
                           description="The tidy samples of bench.load() (one row per sample, parameters "
                                       "and the environment's variant as columns) as a file for other tools.")
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
                           description="Show suites, the workload catalogue with its parameters for "
                                       "a profile, and environments with whether each is available here.")
    lst.add_argument("--profile", choices=config.PROFILES, default="quick",
                     help="show workload parameters for this profile (default: quick)")
    lst.add_argument("--allow-tcg", action="store_true",
                     help="count kvm environments as available under TCG emulation where KVM cannot run")
    return parser


def cmd_run(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    from .runner import RunOptions, Runner, plan, plan_resume

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
        p, options, resume = plan_resume(catalogue, args.out, args.resume)
    else:
        options = RunOptions(suite="quick" if args.suite is None else args.suite, environments=args.env, repetitions=args.reps,
                             profile=args.profile, out=args.out, run_id=args.run_id, seed=args.seed,
                             scratch=args.scratch, allow_tcg=args.allow_tcg,
                             target_ci=args.target_ci, max_reps=args.max_reps,
                             client_host=args.client_host, ssh_options=tuple(args.ssh_option or ()),
                             context=_passed_context(args.pass_env), allow_mismatch=args.allow_mismatch)
        if args.ssh_option and not args.client_host:
            raise BenchError("--ssh-option is for reaching --client-host; give --client-host [USER@]HOST too")
        p = plan(catalogue, options)
    for name, why in p.skipped_environments.items():
        print(f"skipping {name}: {why}", file=sys.stderr)
    print(f"{'resuming' if resume else 'run'} {p.run_id}: suite {p.suite} ({p.profile}), {len(p.workloads)} workloads x "
          f"{len(p.environments)} environments ({', '.join(p.environments)}), {p.repetitions} repetitions"
          + (f"; clients on {p.client.destination}" if p.client else ""), file=sys.stderr)
    runner = Runner(p, options, resume=resume)
    try:
        store = runner.execute()
    except KeyboardInterrupt:
        print(f"interrupted: everything torn down; finished repetitions are in {runner.store.path}; "
              f"finish it with: bench run --out {args.out} --resume {p.run_id}", file=sys.stderr)
        return 130
    print_summary(store)
    write_run_report(store.path)
    return 0 if runner.failures == 0 else 1


def _passed_context(groups: list[str] | None):
    """The declared context with the variables --pass-env names, as this shell has them."""
    from .environments.context import ExecutionContext

    names = [n for group in groups or () for n in _csv(group)]
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
    os.environ.setdefault("BENCH_WORKERS", "1")
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
        # A sweep point is where the sample's parameters differ from the workload's own.
        own = manifest["workloads"].get(s.workload, {}).get("params", {})
        point = " ".join(f"{k}={v}" for k, v in s.params.items() if own.get(k) != v)
        headline.setdefault(s.workload, (s.metric, point))
        if (s.metric, point) == headline[s.workload]:
            values.setdefault((s.workload, s.environment), []).append(s.value)
            units[s.workload] = s.unit
    # Suite order, and the environments in the order they were asked for (native first).
    workloads = manifest["workload_order"]
    envs = manifest["environment_order"]
    values = dict(sorted(values.items(), key=lambda kv: (workloads.index(kv[0][0]), envs.index(kv[0][1]))))
    print(f"\n{'workload':<20} {'environment':<14} {'metric':<44} {'mean':>12} {'sd':>10} {'n':>3}")
    for (workload, env), vals in values.items():
        sd = statistics.stdev(vals) if len(vals) > 1 else float("nan")
        env = f"{env} (TCG)" if env in emulated else env
        metric, point = headline[workload]
        label = f"{metric} ({units[workload]})" + (f" @ {point}" if point else "")
        print(f"{workload:<20} {env:<14} {label:<44} {statistics.fmean(vals):>12.4g} {sd:>10.3g} {len(vals):>3}")
    if emulated:
        print(f"\n(TCG): {', '.join(sorted(emulated))} ran under QEMU's TCG binary translation: emulated, "
              f"not KVM measurements")
    failures = store.failures()
    if failures:
        print(f"\n{len(failures)} failed repetitions (details in {store.path / 'failures.jsonl'}):")
        for f in failures[:10]:
            print(f"  {f['environment']} · {f['workload']} · rep {f['repetition']}: {f['reason']}")
    print(f"\n{manifest['status']} in {manifest['wall_seconds']:.0f} s: {manifest['samples']} samples "
          f"in {store.path}  (pandas: bench.load({str(store.path)!r}))")


def resolve_run(name: str, out: Path) -> Path:
    """A run folder given as a path, or as a run id under the results folder."""
    from .store import MANIFEST, check_run_id

    if (Path(name) / MANIFEST).exists():
        return Path(name)
    if "/" not in name and (out / check_run_id(name) / MANIFEST).exists():
        return out / name
    raise BenchError(f"no run folder {name!r} (neither a folder with run.json nor a run id in {out}/)")


def _need_report_packages() -> None:
    missing = [m for m in ("scipy", "matplotlib", "jinja2") if importlib.util.find_spec(m) is None]
    if missing:
        raise BenchError(f"the report needs {', '.join(missing)}: run scripts/setup.sh "
                         f"(it installs bench's dependencies into .venv)")


def cmd_report(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    _need_report_packages()
    from .report import render_runs

    folders = [resolve_run(r, args.out) for r in args.runs]
    print(f"report: {render_runs(folders, args.output)}")
    return 0


def cmd_compare(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    _need_report_packages()
    import warnings

    from . import stats
    from .store import load

    if args.threshold < 0:
        raise BenchError(f"--threshold must be 0 or more, not {args.threshold:g}")
    a, b = resolve_run(args.run_a, args.out), resolve_run(args.run_b, args.out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an incomplete run is compared on what it has
        before, after = load(a), load(b)
    if before.empty or after.empty:
        raise BenchError(f"{a if before.empty else b}: no samples to compare")
    table = stats.compare_runs(before, after)
    if table.empty:
        raise BenchError(f"{a.name} and {b.name} have no cell (environment, workload, metric) in common")
    table["regression"] = table["significant"] & (table["overhead_pct"] > args.threshold)
    shown = table if args.all else table[table["significant"] | (table["overhead_pct"].abs() > args.threshold)]
    print(f"{'environment':<16} {'workload':<20} {'metric':<28} {'point':<12} {'A':>11} {'B':>11} "
          f"{'change':>8} {'95% interval':>19} {'p':>6}")
    for r in shown.itertuples():
        flags = [f for f, on in (("REGRESSION", r.regression), ("significant", r.significant and not r.regression),
                                 ("noisy", r.noisy), ("few", r.few)) if on]
        # The change is B against A in the worse direction: positive is worse whatever the metric.
        print(f"{r.environment:<16} {r.workload:<20} {r.metric:<28} {r.point:<12} {r.mean_a:>11.4g} {r.mean_b:>11.4g} "
              f"{r.overhead_pct:>+7.1f}% [{r.overhead_low:>+7.1f}%,{r.overhead_high:>+7.1f}%] {r.p:>6.3f} "
              f"{' '.join(flags)}")
    regressions = int(table["regression"].sum())
    p_min = table["p_min"].max()
    print(f"\n{len(table)} cells compared ({len(table) - len(shown)} unchanged not listed; --all lists them); "
          f"change = worse-direction change of B against A; {int(table['significant'].sum())} significant "
          f"(alpha 0.05{'; permutation p cannot go below %.3g here, the Fieller interval decides' % p_min if p_min > 0.05 else ''}); "
          f"{regressions} regression(s) beyond {args.threshold:g} %")
    return 1 if regressions else 0


def cmd_export(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    import warnings

    from . import export
    from .store import load

    folders = [resolve_run(r, args.out) for r in args.runs]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = load(*folders)
    for w in caught:  # an incomplete run is exported with what it has, and said so
        print(f"bench: warning: {w.message}", file=sys.stderr)
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
        print(f"  {check.line()}")
    failed = [c.name for c in checks if c.status == doctor.FAIL]
    warned = sum(c.status == doctor.WARN for c in checks)
    if failed:
        print(f"\nthe host environment cannot run: {', '.join(failed)} missing")
    else:
        print(f"\nthe host environment can run every workload; {warned} warning(s)")
    return status


def cmd_list(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    from .environments import KINDS

    # One column width for every name, so the long fio names line up with the short ones.
    width = max(len(n) for n in [*catalogue.suites, *catalogue.workloads, *catalogue.environments]) + 1
    pad = " " * width
    print("suites:")
    for name, s in sorted(catalogue.suites.items()):
        print(f"  {name:<{width}} {s.profile}, {s.repetitions} reps: {', '.join(s.workloads)}")
        if s.description:
            print(f"  {pad} {s.description}")
        if s.environments:
            print(f"  {pad} in: {', '.join(s.environments)}")
        for w, envs in s.only.items():
            print(f"  {pad} {w} only in: {', '.join(envs)}")
    print(f"\nworkloads (parameters for the {args.profile} profile):")
    for name in sorted(catalogue.workloads):
        w = catalogue.workload(name, args.profile)
        params = " ".join(f"{k}={v}" for k, v in w.params.items() if v is not None)
        print(f"  {name:<{width}} {w.tool:<9} {w.description}")
        print(f"  {pad} {'':<9} {params}; {w.warmups} warm-up(s), timeout {w.timeout:.0f} s")
    print("\nenvironments:")
    kw = max(len(e.kind) for e in catalogue.environments.values())
    for name, e in sorted(catalogue.environments.items()):
        ok, why = KINDS[e.kind].availability(e.variant_for(args.profile), allow_tcg=args.allow_tcg)
        state = "available" if ok else "NOT AVAILABLE"
        print(f"  {name:<{width}} {e.kind:<{kw}} {state}: {why}")
        if e.description:
            print(f"  {pad} {'':<{kw}} {e.description}")
        if e.dimension:
            asked = "" if e.by_default else "; runs only when named (--env or a suite)"
            print(f"  {pad} {'':<{kw}} variant of {e.baseline} ({e.dimension}){asked}")
    return 0


def cmd_image(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    from . import image
    from .environments.docker import DockerEnvironment, client

    recipe = image.Recipe.default()
    ok, why = DockerEnvironment.availability({})
    if args.image_verb == "build":
        if not ok:
            raise BenchError(f"cannot build the Docker image: {why}")
        img = image.docker_image(client(), recipe, force=args.force)
        print(f"{recipe.tag} {img.id}")
        # The VM's kernel, initramfs and disk come from the same root file system.
        kernel, _ = image.vm_kernel(recipe)
        print(f"VM disk {image.vm_disk(recipe)}, kernel {kernel}")
        return 0
    print(f"recipe {recipe.digest}: Debian {recipe.release} ({','.join(recipe.components)}) from {recipe.mirror}")
    print(f"  packages: {' '.join(recipe.packages)}")
    size = f"{recipe.rootfs.stat().st_size / 2**20:.0f} MiB" if recipe.rootfs.exists() else "not built"
    print(f"root file system {recipe.rootfs}: {size}")
    vm = image.CACHE / f"vm-{recipe.digest}"
    for disk in sorted(vm.glob("root.*")) if vm.is_dir() else []:
        print(f"VM disk {disk}: {disk.stat().st_blocks * 512 / 2**20:.0f} MiB used")
    if not ok:
        print(f"docker: {why}")
        return 0
    for img in client().images.list(name=image.IMAGE_REPOSITORY):
        current = "current" if recipe.tag in img.tags else "older recipe"
        print(f"docker image {', '.join(img.tags)} {img.short_id} {img.attrs['Size'] / 2**20:.0f} MiB ({current})")
    return 0


def cmd_cleanup(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    from . import cleanup
    from .store import check_run_id

    if args.run_id:
        check_run_id(args.run_id)
    leftovers = cleanup.find(args.run_id, args.scratch)
    if not leftovers:
        print("nothing to clean up")
        return 0
    for leftover in leftovers:
        print(f"{'would remove' if args.dry_run else 'removing'} {leftover.kind} {leftover.name} "
              f"(run {leftover.run_id})")
        if not args.dry_run:
            leftover.remove()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config_dir is not None:
        # Environments find files of the configuration folder (a compose file) through it too.
        os.environ["BENCH_CONFIG_DIR"] = str(args.config_dir.resolve())
    try:
        catalogue = config.load(args.config_dir)
        verbs = {"run": cmd_run, "list": cmd_list, "image": cmd_image, "cleanup": cmd_cleanup,
                 "report": cmd_report, "compare": cmd_compare, "export": cmd_export,
                 "doctor": cmd_doctor}
        return verbs[args.verb](args, catalogue)
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `bench list | head`: the reader has gone; say nothing more (and not at exit either).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
