"""The plan of a run: everything checked and resolved once, before anything is made.

`resolve` reads the catalogue and the command line's options into one typed `Plan`: each
environment with its kind and its variant, validated by the kind's own model; each workload
with its parameters, validated by its tool's model, and the keys its repetitions sweep; the
cells (which workload runs where), the order of the rounds (`schedule`), and the client host.
Everything below receives what it needs from the plan, typed: a variant or a workload's
parameters are not validated again on their way. `resume` makes the same plan from an
interrupted run's own run.json (a RunManifest), not from today's catalogue.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from . import live
from .config import Catalogue, WorkloadConfig
from .datafile import excerpt
from .environments import KINDS, Environment
from .environments.context import ExecutionContext
from .environments.host import HostEnvironment
from .environments.remote import ClientHost, preflight
from .errors import BenchError
from .model import RETRIED_CAUSES, RunManifest
from .store import RunStore, check_run_id, effective_status
from .workloads import TOOLS


@dataclasses.dataclass(frozen=True)
class PlannedEnvironment:
    """One environment of the plan: its kind, its variant as the kind's model validated it, and
    the question it answers when it is a variant of another (for the report's grouping)."""

    name: str
    kind: type[Environment]
    variant: BaseModel
    description: str = ""
    dimension: str = ""
    baseline: str = ""
    affects: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """As run.json keeps it: the variant's keys as the catalogue gave them."""
        doc: dict[str, Any] = {"kind": self.kind.kind, "description": self.description,
                               "variant": self.variant.model_dump(mode="json", exclude_unset=True)}
        if self.dimension:
            doc.update(dimension=self.dimension, baseline=self.baseline, affects=list(self.affects))
        return doc

    @classmethod
    def from_json(cls, name: str, doc: dict[str, Any]) -> "PlannedEnvironment":
        """From run.json (a resumed run): its kind must be one this bench knows, and its variant
        valid for that kind's model. Raises ValueError or KeyError otherwise."""
        kind = KINDS[doc["kind"]]
        return cls(name, kind, kind.Variant.model_validate(doc.get("variant", {})), doc.get("description", ""),
                   doc.get("dimension", ""), doc.get("baseline", ""), tuple(doc.get("affects", ())))


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
    target_ci: float | None = None         # % half-width of the 95 % interval a cell must reach
    max_reps: int | None = None            # the cap on a cell's repetitions under target_ci
    client_host: str | None = None         # [USER@]HOST that runs the clients; None: this host
    ssh_options: tuple[str, ...] = ()      # KEY=VALUE for `ssh -o` to reach client_host
    context: ExecutionContext = ExecutionContext()  # what every tool runs under (--pass-env)
    allow_mismatch: bool = False           # measure despite an unintended parity difference
    retry_failed: bool = False             # --resume: measure again what failed for a backend reason


@dataclasses.dataclass(frozen=True)
class Plan:
    run_id: str
    suite: str
    profile: str
    repetitions: int
    seed: int
    workloads: list[WorkloadConfig]
    environments: dict[str, PlannedEnvironment]  # in the order --env, the suite or the catalogue gave
    skipped_environments: dict[str, str]     # name -> why it is not available here
    # workload -> the only environments it runs in (the suite's pairs and what the kinds can run)
    only: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    client: ClientHost | None = None         # the client host, when it is not this one
    # (environment, workload) cells an environment's kind refuses, and why (said before anything is made)
    left_out: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)

    def runs(self, environment: str, workload: str) -> bool:
        """Is (environment, workload) a cell of this plan?"""
        return workload_runs(self.only, environment, workload)


def new_run_id(suite: str) -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{suite}-{random.randrange(16**4):04x}"


def check_scratch_space(workloads: list[WorkloadConfig], scratch: Path) -> None:
    """The largest data file a workload lays out must fit in --scratch (the host's and guests'
    files live there; a Docker volume lives under Docker's own root, which has its own disk)."""
    need = {w.name: TOOLS[w.tool].scratch_bytes(w.params) for w in workloads}
    name = max(need, key=need.get, default=None)
    if not name or not need[name]:
        return
    where = Path(scratch)
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if need[name] > free:
        raise BenchError(f"{name} lays out a {_binary(need[name])} file in --scratch {scratch}, which has "
                         f"{_binary(free)} free: free some space, choose another --scratch, or a smaller profile")


def _binary(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def resolve(catalogue: Catalogue, options: RunOptions) -> Plan:
    """Check everything that can be checked without making anything. Raises BenchError."""
    suite = catalogue.suite(options.suite)
    profile = options.profile or suite.profile
    repetitions = options.repetitions if options.repetitions is not None else suite.repetitions
    if options.max_reps is not None and not options.target_ci:
        raise BenchError("--max-reps caps --target-ci's extra repetitions; give --target-ci PCT too, "
                          "or --reps N for a fixed number")
    if options.target_ci is not None and not 0 < options.target_ci < 100:
        raise BenchError(f"--target-ci is a percentage of the mean, between 0 and 100 (got {options.target_ci:g})")
    if options.max_reps is not None and options.max_reps < repetitions:
        raise BenchError(f"--max-reps {options.max_reps} is below the {repetitions} repetitions every cell runs anyway")
    if repetitions < 1:
        raise BenchError("--reps must be at least 1")
    workloads = [catalogue.workload(name, profile) for name in suite.workloads]
    for w in workloads:
        why = TOOLS[w.tool].refusal_here(w.params)
        if why:
            raise BenchError(f"workload '{w.name}' cannot run on this host: {why}")
    check_scratch_space(workloads, options.scratch)

    environments: dict[str, PlannedEnvironment] = {}
    skipped: dict[str, str] = {}
    if options.client_host and not any(TOOLS[w.tool].client_programs for w in workloads):
        raise BenchError(f"--client-host runs the clients of client/server workloads (netperf, redis, "
                         f"mariadb); suite {options.suite} has none")
    names = (options.environments or suite.environments
             or [n for n, e in catalogue.environments.items() if e.by_default])
    for name in names:
        spec = catalogue.environment(name)
        kind = KINDS[spec.kind]
        variant = catalogue.variant(name, profile)
        refusal = kind.remote_client_refusal(variant) if options.client_host else None
        if refusal:
            if options.environments:
                raise BenchError(f"environment '{name}' cannot serve a client on another host: {refusal}")
            skipped[name] = f"cannot serve a client on another host: {refusal}"
            continue
        ok, why = kind.availability(variant, allow_tcg=options.allow_tcg)
        if not ok:
            if options.environments:  # asked for by name: refuse, and say how to fix it
                raise BenchError(f"environment '{name}' is not available here: {why}")
            skipped[name] = why
            continue
        environments[name] = PlannedEnvironment(name, kind, variant, spec.description, spec.dimension,
                                                spec.baseline, tuple(spec.affects))
    # An environment may run only some workloads (a Compose file's application): its other
    # cells are left out of the plan, and an environment left with none is not provisioned.
    for name in list(environments):
        e = environments[name]
        refusals = [e.kind.refusal(e.variant, TOOLS[w.tool]) for w in workloads]
        if all(r is not None for r in refusals):  # it refuses every workload
            if options.environments:
                raise BenchError(f"environment '{name}' runs none of suite {options.suite}'s workloads: "
                                 f"{refusals[0]}")
            skipped[name] = f"runs none of suite {options.suite}'s workloads: {refusals[0]}"
            del environments[name]
    if not environments:
        raise BenchError("no environment is available here; see `bench list`")
    # The cells: a workload runs in every environment unless the suite pairs it with `only`
    # some, or the environment's kind cannot run it (above); `only` holds both, and run.json
    # keeps it, so that a resumed run has the same cells.
    only: dict[str, list[str]] = {}
    left_out: dict[tuple[str, str], str] = {}
    for w in workloads:
        for n, e in environments.items():
            refusal = e.kind.refusal(e.variant, TOOLS[w.tool])
            if refusal is not None and workload_runs(suite.only, n, w.name):
                left_out[(n, w.name)] = str(refusal)
        allowed = [n for n, e in environments.items() if workload_runs(suite.only, n, w.name)
                   and e.kind.refusal(e.variant, TOOLS[w.tool]) is None]
        if w.name in suite.only or len(allowed) < len(environments):
            only[w.name] = allowed
    for name in list(environments):
        if not any(workload_runs(only, name, w.name) for w in workloads):
            del environments[name]   # provisioning it would measure nothing
            skipped[name] = "no workload of the suite runs there"
    if not environments:
        raise BenchError(f"no workload of suite '{options.suite}' runs in the environments chosen")

    # The host is the clients' side (unless --client-host), and the only environment whose
    # programs can be checked before provisioning; others are checked once they exist.
    missing = set()
    for w in workloads:
        tool = TOOLS[w.tool]
        needed = [] if options.client_host else tool.client_requirements()
        if any(e.kind is HostEnvironment for e in environments.values()):
            needed += [(p, " ".join(tool.packages)) for p in tool.programs]
        for program, package in needed:
            if not HostEnvironment.has_program_here(program, options.context.path):
                missing.add((program, package))
    if missing:
        programs = ", ".join(sorted(p for p, _ in missing))
        packages = " ".join(sorted({pk for _, pk in missing}))
        raise BenchError(f"missing on this host: {programs}; install with `apt-get install {packages}` "
                         f"(netperf is in Debian's non-free component), or run scripts/setup.sh")

    run_id = check_run_id(options.run_id) if options.run_id else new_run_id(options.suite)
    alive = live.holder(run_id)
    if alive is not None:   # under this --out or another: its resources carry this id too
        raise BenchError(f"{alive}: choose another --run-id")
    if (options.out / run_id).exists():
        raise BenchError(f"{options.out / run_id} already exists: choose another --run-id")
    _check_writable(options.out)
    seed = options.seed if options.seed is not None else random.randrange(2**31)
    client = client_preflight(workloads, options)
    return Plan(run_id, options.suite, profile, repetitions, seed, workloads, environments, skipped,
                only=only, client=client,
                left_out={cell: why for cell, why in left_out.items() if cell[0] in environments})


def workload_runs(only: dict[str, list[str]], environment: str, workload: str) -> bool:
    return workload not in only or environment in only[workload]


def client_preflight(workloads: list[WorkloadConfig], options: RunOptions) -> ClientHost | None:
    """With --client-host: connect once, check the client programs there, and find this host's
    address facing it, on which every environment then publishes its servers."""
    if not options.client_host:
        return None
    programs = {p: pkg for w in workloads for p, pkg in TOOLS[w.tool].client_requirements()}
    return preflight(options.client_host, tuple(options.ssh_options), programs)


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



def schedule(p: Plan, done: frozenset[tuple[str, str, int]] = frozenset()) -> list[Step]:
    """Rounds of one repetition per cell; each cell's warm-ups just before its first repetition.

    `done` holds the (environment, workload, repetition) a resumed run already has: they are
    skipped, and the warm-ups move to the first repetition still to run, since the resumed
    environment is a fresh one. The order of the rest is the original run's (same seed).
    """
    rng = random.Random(p.seed)
    steps: list[Step] = []
    warmed: set[tuple[str, str]] = set()
    for rep in range(1, p.repetitions + 1):
        for w in p.workloads:
            envs = list(p.environments)
            rng.shuffle(envs)
            for env in envs:
                if (env, w.name, rep) in done or not p.runs(env, w.name):
                    continue
                if (env, w.name) not in warmed:
                    steps += [Step(env, w, 0, i) for i in range(1, w.warmups + 1)]
                    warmed.add((env, w.name))
                steps.append(Step(env, w, rep))
    return steps



def backend_failures(store: RunStore) -> int:
    """Repetitions that failed for their environment's sake and were not measured since."""
    measured = {(s.environment, s.workload, s.repetition) for s in store.samples()}
    return len({(f["environment"], f["workload"], f["repetition"]) for f in store.failures()
                if f["repetition"] > 0 and f.get("cause") in RETRIED_CAUSES} - measured)


def resume(catalogue: Catalogue, out: Path, run_id: str,
           retry_failed: bool = False) -> tuple[Plan, RunOptions, RunStore]:
    """The plan of an interrupted run, from its own run.json (not today's catalogue, whose
    parameters may have changed since), and the options it ran with. retry_failed: also the
    repetitions that failed for a backend reason, in a complete run too."""
    store = RunStore(Path(out) / check_run_id(run_id))
    manifest = store.manifest()
    status = effective_status(manifest, store.path)
    if status == "complete":
        pending = backend_failures(store)
        if retry_failed and not pending:
            raise BenchError(f"run {run_id} is complete: nothing to resume (no repetition failed for a backend reason)")
        if not retry_failed:
            hint = "; --retry-failed measures again what failed for a backend reason" if pending else ""
            raise BenchError(f"run {run_id} is complete: nothing to resume{hint}")
    if status == "running":
        raise BenchError(f"run {run_id} is still running (pid {manifest.get('pid')}); stop it first")
    try:
        m = RunManifest.from_json(manifest)
    except ValueError as e:
        raise BenchError(f"cannot resume {run_id}: its run.json lacks or garbles {e} "
                         f"(a run folder bench wrote has it)") from None
    if not m.workload_order or not m.environment_order:
        raise BenchError(f"cannot resume {run_id}: its run.json lists no workloads or no environments")
    try:
        workloads = [WorkloadConfig.from_json(m.workloads[n]) for n in m.workload_order]
        environments = {n: PlannedEnvironment.from_json(n, m.environments[n]) for n in m.environment_order}
        options = RunOptions(suite=m.suite, out=Path(out), run_id=run_id, seed=m.order_seed,
                             scratch=Path(m.scratch), allow_tcg=m.allow_tcg,
                             target_ci=m.target_ci, max_reps=m.max_reps,
                             # the run's own client: a resumed run's clients run where its first ones did
                             client_host=m.client.get("host"),
                             ssh_options=tuple(m.client.get("ssh_options", ())),
                             context=ExecutionContext(tuple(sorted(m.pass_env.items()))),
                             allow_mismatch=m.allow_mismatch, retry_failed=retry_failed)
        for name, e in environments.items():
            ok, why = e.kind.availability(e.variant, allow_tcg=options.allow_tcg)
            if not ok:
                raise BenchError(f"cannot resume: environment '{name}' is not available here: {why}")
        client = client_preflight(workloads, options)
        p = Plan(run_id, m.suite, m.profile, m.repetitions, m.order_seed,
                 workloads, environments, m.skipped_environments, only=m.only, client=client)
    except (KeyError, TypeError, ValueError, AttributeError, ValidationError) as e:
        # a run.json edited or damaged by hand: say what is missing instead of a traceback
        raise BenchError(f"cannot resume {run_id}: its run.json lacks or garbles {excerpt(str(e))} "
                         f"(a run folder bench wrote has it)") from None
    return p, options, store


