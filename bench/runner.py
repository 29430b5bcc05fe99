"""The stages of a run: plan (validate everything) -> provision -> run -> teardown.

Nothing is provisioned until the whole plan has been checked: suite, workloads, parameters,
environments and their availability, the tools on the host. Cells (environment x workload)
run in rounds, one repetition of every cell per round, with the environments of a workload in
a shuffled order each round, so that a drift of the machine (thermal, a neighbour's load)
spreads over every environment instead of landing on one. Every finished repetition is on
disk before the next starts. Teardown runs on success, failure, Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import random
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import metadata
from .config import Catalogue, WorkloadConfig
from .environments import KINDS, Environment
from .environments.host import HostEnvironment
from .errors import BenchError, ToolError
from .model import Failure, Sample
from .store import RunStore, check_run_id
from .workloads import TOOLS, CellContext

STDERR_TAIL = 2000  # characters of a failed tool's stderr kept in failures.jsonl


@dataclasses.dataclass(frozen=True)
class RunOptions:
    suite: str
    environments: list[str] | None = None  # None: every environment available here
    repetitions: int | None = None         # None: the suite's
    profile: str | None = None             # None: the suite's
    out: Path = Path("results")
    run_id: str | None = None
    seed: int | None = None                # order of environments within a round
    scratch: Path = Path("/var/tmp")       # where environments keep data files (fio's)
    allow_tcg: bool = False                # may a VM run emulated when KVM cannot run here?


@dataclasses.dataclass(frozen=True)
class Plan:
    run_id: str
    suite: str
    profile: str
    repetitions: int
    seed: int
    workloads: list[WorkloadConfig]
    environments: dict[str, dict[str, Any]]  # name -> {kind, description, variant}
    skipped_environments: dict[str, str]     # name -> why it is not available here


def _new_run_id(suite: str) -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{suite}-{random.randrange(16**4):04x}"


def plan(catalogue: Catalogue, options: RunOptions) -> Plan:
    """Check everything that can be checked without making anything. Raises BenchError."""
    suite = catalogue.suite(options.suite)
    profile = options.profile or suite.profile
    repetitions = options.repetitions if options.repetitions is not None else suite.repetitions
    if repetitions < 1:
        raise BenchError("--reps must be at least 1")
    workloads = [catalogue.workload(name, profile) for name in suite.workloads]

    environments: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    names = options.environments or list(catalogue.environments)
    for name in names:
        spec = catalogue.environment(name)
        ok, why = KINDS[spec.kind].availability(spec.variant, allow_tcg=options.allow_tcg)
        if not ok:
            if options.environments:  # asked for by name: refuse, and say how to fix it
                raise BenchError(f"environment '{name}' is not available here: {why}")
            skipped[name] = why
            continue
        environments[name] = {"kind": spec.kind, "description": spec.description, "variant": spec.variant}
    if not environments:
        raise BenchError("no environment is available here; see `bench list`")

    # The host is every client's side, and the only environment whose programs can be checked
    # before provisioning; others are checked once they exist.
    missing = set()
    for w in workloads:
        tool = TOOLS[w.tool]
        needed = list(tool.client_programs)
        if any(e["kind"] == "host" for e in environments.values()):
            needed += tool.programs
        for program in needed:
            if not HostEnvironment.has_program_here(program):
                missing.add((program, " ".join(tool.packages)))
    if missing:
        programs = ", ".join(sorted(p for p, _ in missing))
        packages = " ".join(sorted({pk for _, pk in missing}))
        raise BenchError(f"missing on this host: {programs}; install with `apt-get install {packages}` "
                         f"(netperf is in Debian's non-free component) or run `make setup`")

    run_id = check_run_id(options.run_id) if options.run_id else _new_run_id(options.suite)
    if (options.out / run_id).exists():
        raise BenchError(f"{options.out / run_id} already exists: choose another --run-id")
    _check_writable(options.out)
    seed = options.seed if options.seed is not None else random.randrange(2**31)
    return Plan(run_id, options.suite, profile, repetitions, seed, workloads, environments, skipped)


def _check_writable(folder: Path) -> None:
    """Fail before provisioning, not after an hour of it. Makes only folders that were asked for."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise BenchError(f"cannot write results to {folder}: {e.strerror}; choose another folder "
                         f"with --out") from None


@dataclasses.dataclass(frozen=True)
class Step:
    environment: str
    workload: WorkloadConfig
    repetition: int   # 1-based measured repetition; 0 for a warm-up
    warmup: int = 0   # 1-based warm-up number when repetition == 0


def schedule(p: Plan) -> list[Step]:
    """Rounds of one repetition per cell; each cell's warm-ups just before its first repetition."""
    rng = random.Random(p.seed)
    steps: list[Step] = []
    for rep in range(1, p.repetitions + 1):
        for w in p.workloads:
            envs = list(p.environments)
            rng.shuffle(envs)
            for env in envs:
                if rep == 1:
                    steps += [Step(env, w, 0, i) for i in range(1, w.warmups + 1)]
                steps.append(Step(env, w, rep))
    return steps


class Progress:
    """A line per step on stderr: which step, then (when it ends) its outcome and the time left."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total = total
        self.done = 0
        self.start = time.monotonic()
        self.stream = stream

    def begin(self, step: Step) -> None:
        what = f"warm-up {step.warmup}" if step.repetition == 0 else f"rep {step.repetition}"
        print(f"[{self.done + 1:>{len(str(self.total))}}/{self.total}] {step.environment} · "
              f"{step.workload.name} · {what} ... ", end="", file=self.stream, flush=True)

    def end(self, outcome: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.start
        left = elapsed / self.done * (self.total - self.done)
        print(f"{outcome}  [{_clock(elapsed)} elapsed, ~{_clock(left)} left]", file=self.stream, flush=True)


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s"


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler, `kill`) tears down like Ctrl-C does."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Runner:
    def __init__(self, p: Plan, options: RunOptions, report: Callable[[str], None] | None = None):
        self.plan = p
        self.options = options
        self.say = report or (lambda line: print(line, file=sys.stderr, flush=True))
        self.store: RunStore | None = None
        self.envs: dict[str, Environment] = {}
        self.client = HostEnvironment("client", {}, p.run_id)
        self.manifest: dict[str, Any] = {}
        self.counts = {"samples": 0, "failures": 0, "repetitions_done": 0}
        self.tool_seconds = 0.0

    def execute(self) -> RunStore:
        p = self.plan
        self.store = RunStore.create(self.options.out, p.run_id)
        started = time.time()
        self.manifest = {
            "run_id": p.run_id,
            "status": "running",
            "started_at": dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(),
            "command": sys.argv,
            "suite": p.suite,
            "profile": p.profile,
            "repetitions": p.repetitions,
            "order_seed": p.seed,
            "workloads": {w.name: dataclasses.asdict(w) for w in p.workloads},
            # run.json's keys are sorted; these keep the suite's and the user's order.
            "workload_order": [w.name for w in p.workloads],
            "environment_order": list(p.environments),
            "environments": {n: dict(e) for n, e in p.environments.items()},
            "skipped_environments": p.skipped_environments,
            "host": metadata.host_metadata(),
        }
        self.store.write_manifest(self.manifest)
        status = "failed"
        try:
            with _sigterm_as_interrupt():
                self._provision()
                steps = schedule(p)
                progress = Progress(len(steps))
                for step in steps:
                    progress.begin(step)
                    progress.end(self._run_step(step))
            status = "complete"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            # Teardown must run even if a second Ctrl-C arrives during it.
            with _ignore_interrupts():
                self._teardown()
                ended = time.time()
                self.manifest.update(
                    status=status,
                    ended_at=dt.datetime.fromtimestamp(ended, dt.timezone.utc).isoformat(),
                    wall_seconds=round(ended - started, 3),
                    tool_seconds=round(self.tool_seconds, 3),
                    **self.counts,
                )
                self.store.write_manifest(self.manifest)
        return self.store

    # -- stages ------------------------------------------------------------------------------

    def _provision(self) -> None:
        n_ports = max((TOOLS[w.tool].server_ports for w in self.plan.workloads), default=0)
        scratch = str(self.options.scratch)
        self.client.provision(scratch, 0)
        for name, e in self.plan.environments.items():
            self.say(f"provisioning {name} ({e['kind']})")
            env = KINDS[e["kind"]](name, e["variant"], self.plan.run_id, allow_tcg=self.options.allow_tcg)
            self.envs[name] = env  # registered before provision(), so a half-made one is torn down
            try:
                env.provision(scratch, n_ports)
            except (BenchError, KeyboardInterrupt):
                raise
            except Exception as e:  # a daemon's error: one line, and the details in the run folder
                self.store.append_failure(Failure(self.plan.run_id, name, "provision", 0,
                                                  f"{type(e).__name__}: {e}", traceback.format_exc()))
                raise BenchError(f"provisioning {name} failed: {type(e).__name__}: {e}") from None
            finally:
                for artifact, text in env.artifacts().items():
                    self.store.write_raw([name, "provision", artifact], text)
            # What provisioning measured (a VM's boot-to-ready time) is a sample like any other.
            self.store.append_samples([
                Sample(self.plan.run_id, name, e["kind"], "provision", e["kind"], m.metric, m.unit, m.value,
                       m.better, 1, variant=env.effective_variant())
                for m in env.measurements])
            self.counts["samples"] += len(env.measurements)
            if env.effective_variant().get("accel") == "tcg":
                self.say(f"{name} runs under TCG: its numbers are EMULATED, not KVM measurements")
        versions: dict[str, dict[str, str]] = {}
        for name, env in self.envs.items():
            self.manifest["environments"][name]["variant"] = env.effective_variant()
            self.manifest["environments"][name]["metadata"] = env.metadata()
            versions[name] = {w.tool: TOOLS[w.tool].version(env) for w in self.plan.workloads}
            self.manifest["environments"][name]["tool_versions"] = versions[name]
        self.manifest["client_tool_versions"] = {
            w.tool: TOOLS[w.tool].version(self.client) for w in self.plan.workloads
            if TOOLS[w.tool].client_programs}
        self.manifest["tool_version_mismatches"] = metadata.version_mismatches(versions)
        self.store.write_manifest(self.manifest)

    def _teardown(self) -> None:
        for env in [*self.envs.values(), self.client]:
            try:
                env.teardown()
            except Exception as e:  # keep tearing down the others; say what was left
                self.say(f"teardown of {env.name} failed: {e}; `bench cleanup` removes leftovers")

    def _run_step(self, step: Step) -> str:
        """Run one repetition or warm-up; store its raw output and samples or its failure."""
        env = self.envs[step.environment]
        w = step.workload
        tool = TOOLS[w.tool]
        name = f"warmup-{step.warmup}" if step.repetition == 0 else f"rep-{step.repetition}"
        ctx = CellContext(env=env, client=self.client, params=w.params, timeout=w.timeout, label=w.name)

        def fail(reason: str, stderr: str = "", raw: str = "") -> str:
            self.counts["failures"] += 1
            self.store.append_failure(Failure(self.plan.run_id, step.environment, w.name, step.repetition,
                                              reason, stderr[-STDERR_TAIL:], raw))
            return f"FAILED ({reason})"

        missing = [p for p in tool.programs if not env.has_program(p)]
        if missing:
            return fail(f"{', '.join(missing)} not found in {step.environment}; install "
                        f"{' '.join(tool.packages)} there")
        try:
            raw = tool.run(ctx)
        except ToolError as e:
            return fail(str(e))
        except KeyboardInterrupt:
            raise
        except Exception as e:  # a harness or daemon error: record it with its trace, go on
            return fail(f"{type(e).__name__}: {e}", traceback.format_exc())

        self.tool_seconds += raw.result.duration
        parts = [step.environment, w.name]
        raw_path = self.store.write_raw([*parts, f"{name}.{tool.raw_suffix}"], raw.text)
        if raw.result.stderr.strip():
            self.store.write_raw([*parts, f"{name}.stderr"], raw.result.stderr)
        for key, text in raw.extra.items():
            if text.strip():
                self.store.write_raw([*parts, f"{name}.{key}.txt"], text)

        result = raw.result
        if result.timed_out:
            return fail(f"timed out after {w.timeout:.0f} s", result.stderr, raw_path)
        if result.returncode != 0:
            return fail(f"exit status {result.returncode}", result.stderr, raw_path)
        try:
            measurements = tool.parse(raw.text, w.params)
        except ToolError as e:
            return fail(f"unparsable output: {e}", result.stderr, raw_path)

        head = measurements[0]
        summary = f"{head.metric}={head.value:.4g} {head.unit} ({result.duration:.1f} s)"
        if step.repetition == 0:
            return f"{summary}, discarded"
        kind = self.plan.environments[step.environment]["kind"]
        variant = env.effective_variant()
        self.store.append_samples([
            Sample(self.plan.run_id, step.environment, kind, w.name, w.tool, m.metric, m.unit, m.value,
                   m.better, step.repetition, params=w.params, variant=variant)
            for m in measurements
        ])
        self.counts["samples"] += len(measurements)
        self.counts["repetitions_done"] += 1
        return summary


@contextlib.contextmanager
def _ignore_interrupts() -> Iterator[None]:
    try:
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
