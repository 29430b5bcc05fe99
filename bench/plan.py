"""The plan of a run: everything checked and resolved once, before anything is made.

`resolve` reads the catalogue and the command line's choices into one typed `Plan`: each
environment with its kind and its variant, validated by the kind's own model; each workload
with its parameters, validated by its tool's model, and the keys its repetitions sweep; the
cells (which workload runs where), the order of the rounds (`schedule`), the client host, and
the options it measures with. The runner receives the plan and nothing else; a variant or a
workload's parameters are not validated again on their way. run.json holds the plan as
`Plan.to_manifest()` writes it and `Plan.from_manifest()` reads it back: `resume` makes an
interrupted run's plan from its own run.json, not from today's catalogue.
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
from .config import Catalogue, SuiteSpec, WorkloadConfig
from .datafile import excerpt
from .environments import KINDS, Environment
from .environments.context import ExecutionContext
from .environments.host import HostEnvironment
from .environments.remote import ClientHost, preflight
from .errors import BenchError
from .limits import MAX_REPS, REPETITIONS, SEED, TARGET_CI
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
    """How a run measures, besides what runs where: the settings run.json keeps and a resumed
    run takes back from it."""

    scratch: Path = Path("/var/tmp")       # where environments keep data files (fio's)
    allow_tcg: bool = False                # may a VM run emulated when KVM cannot run here?
    target_ci: float | None = None         # % half-width of the 95 % interval a cell must reach
    max_reps: int | None = None            # the cap on a cell's repetitions under target_ci
    context: ExecutionContext = ExecutionContext()  # what every tool runs under (--pass-env)
    allow_mismatch: bool = False           # measure despite an unintended parity difference


# run.json's keys of the plan and the JSON type each must have: without the first ones a run
# cannot be resumed; the others have defaults (a run.json edited or damaged by hand is refused,
# naming every key that is missing or of the wrong type).
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "suite": str, "profile": str, "repetitions": int, "order_seed": int, "workloads": dict,
    "workload_order": list, "environments": dict, "environment_order": list}
OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "skipped_environments": dict, "only": dict, "scratch": str, "allow_tcg": bool,
    "target_ci": (int, float, type(None)), "max_reps": (int, type(None)), "pass_env": dict,
    "allow_mismatch": bool, "client": dict}


@dataclasses.dataclass(frozen=True)
class Plan:
    """A run, resolved: what runs where, how often, in which order and with which options; the
    runner needs nothing else. run.json keeps it (`to_manifest`), `--resume` reads it back
    (`from_manifest`)."""

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
    options: RunOptions = RunOptions()
    out: Path = Path("results")              # the results folder that holds the run's folder
    retry_failed: bool = False               # --resume: measure again what failed for a backend reason

    def runs(self, environment: str, workload: str) -> bool:
        """Is (environment, workload) a cell of this plan?"""
        return workload_runs(self.only, environment, workload)

    def to_manifest(self) -> dict[str, Any]:
        """The plan's keys of run.json (the run adds its course and what it observes)."""
        o = self.options
        return {
            "run_id": self.run_id, "suite": self.suite, "profile": self.profile,
            "repetitions": self.repetitions, "order_seed": self.seed,
            "workloads": {w.name: w.to_json() for w in self.workloads},
            # run.json's keys are sorted; these keep the suite's and the user's order.
            "workload_order": [w.name for w in self.workloads],
            "environments": {n: e.to_json() for n, e in self.environments.items()},
            "environment_order": list(self.environments),
            "skipped_environments": self.skipped_environments, "only": self.only,
            "scratch": str(o.scratch), "allow_tcg": o.allow_tcg, "target_ci": o.target_ci,
            "max_reps": o.max_reps, "pass_env": dict(o.context.passed), "allow_mismatch": o.allow_mismatch,
            # Where the clients ran; a remote one's metadata is added once it is connected.
            "client": {"kind": "remote", **self.client.as_dict()} if self.client else {"kind": "host"},
        }

    @classmethod
    def from_manifest(cls, doc: dict[str, Any], out: Path = Path("results"), retry_failed: bool = False) -> "Plan":
        """The plan a run.json holds, as it was: what the run saw since (an environment's
        metadata, the client's) is left aside. ValueError names every key that is missing or
        of the wrong type; a workload or a variant that its model refuses raises KeyError,
        TypeError, ValueError or ValidationError."""
        wrong = [k for k, t in REQUIRED.items()
                 if k not in doc or isinstance(doc[k], bool) and t is int or not isinstance(doc[k], t)]
        wrong += [k for k, t in OPTIONAL.items()
                  if k in doc and (not isinstance(doc[k], t) or isinstance(doc[k], bool) and t is not bool)]
        if wrong:
            raise ValueError(", ".join(wrong))
        client = doc.get("client", {})
        return cls(
            str(doc.get("run_id", "")), doc["suite"], doc["profile"], doc["repetitions"], doc["order_seed"],
            [WorkloadConfig.from_json(doc["workloads"][n]) for n in doc["workload_order"]],
            {n: PlannedEnvironment.from_json(n, doc["environments"][n]) for n in doc["environment_order"]},
            doc.get("skipped_environments", {}), only=doc.get("only", {}),
            client=ClientHost(client["host"], tuple(client.get("ssh_options", ())), client.get("address", ""),
                              client.get("publish_address", "")) if client.get("kind") == "remote" else None,
            options=RunOptions(Path(doc.get("scratch", "/var/tmp")), doc.get("allow_tcg", False),
                               doc.get("target_ci"), doc.get("max_reps"),
                               ExecutionContext(tuple(sorted(doc.get("pass_env", {}).items()))),
                               doc.get("allow_mismatch", False)),
            out=Path(out), retry_failed=retry_failed)


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


def resolve(catalogue: Catalogue, suite: str = "quick", *, environments: list[str] | None = None,
            repetitions: int | None = None, profile: str | None = None, out: Path = Path("results"),
            run_id: str | None = None, seed: int | None = None, client_host: str | None = None,
            ssh_options: tuple[str, ...] = (), options: RunOptions = RunOptions()) -> Plan:
    """Check everything that can be checked without making anything: the command line's choices
    (None: the suite's, or bench's, default) against the catalogue and this host. Raises BenchError."""
    spec = catalogue.suite(suite)
    profile = profile or spec.profile
    REPETITIONS.check(repetitions)
    repetitions = repetitions if repetitions is not None else spec.repetitions
    _check_options(options, repetitions, seed, client_host, ssh_options)
    workloads = [catalogue.workload(name, profile) for name in spec.workloads]
    for w in workloads:
        why = TOOLS[w.tool].refusal_here(w.params)
        if why:
            raise BenchError(f"workload '{w.name}' cannot run on this host: {why}")
    check_scratch_space(workloads, options.scratch)
    if client_host and not any(TOOLS[w.tool].client_programs for w in workloads):
        raise BenchError(f"--client-host runs the clients of client/server workloads (netperf, redis, "
                         f"mariadb); suite {suite} has none")
    names = environments or spec.environments or [n for n, e in catalogue.environments.items() if e.by_default]
    chosen, skipped = _available(catalogue, names, profile, bool(environments), client_host, options.allow_tcg)
    only, left_out = _cells(suite, spec, workloads, chosen, skipped, named=bool(environments))
    _check_host_programs(workloads, chosen, client_host, options.context)
    run_id = _new_folder(out, run_id, suite)
    return Plan(run_id, suite, profile, repetitions, random.randrange(2**31) if seed is None else seed,
                workloads, chosen, skipped, only=only, client=client_preflight(workloads, client_host, ssh_options),
                left_out=left_out, options=options, out=out)


def _check_options(options: RunOptions, repetitions: int, seed: int | None, client_host: str | None,
                   ssh_options: tuple[str, ...]) -> None:
    """The flags against their limits (bench/limits.py: those of the command line's argparse
    types) and against each other."""
    for limit, value in ((MAX_REPS, options.max_reps), (TARGET_CI, options.target_ci), (SEED, seed)):
        limit.check(value)
    if options.max_reps is not None and not options.target_ci:
        raise BenchError("--max-reps caps --target-ci's extra repetitions; give --target-ci PCT too, "
                         "or --reps N for a fixed number")
    if options.max_reps is not None and options.max_reps < repetitions:
        raise BenchError(f"--max-reps {options.max_reps} is below the {repetitions} repetitions every cell runs anyway")
    if ssh_options and not client_host:
        raise BenchError("--ssh-option is for reaching --client-host; give --client-host [USER@]HOST too")


def _available(catalogue: Catalogue, names: list[str], profile: str, named: bool, client_host: str | None,
               allow_tcg: bool) -> tuple[dict[str, PlannedEnvironment], dict[str, str]]:
    """The environments that can run here, and why the others cannot. One asked for by name
    (named: --env) that cannot is refused, with how to fix it; the suite's or the default ones
    are skipped, said."""
    chosen: dict[str, PlannedEnvironment] = {}
    skipped: dict[str, str] = {}
    for name in names:
        spec = catalogue.environment(name)
        kind = KINDS[spec.kind]
        variant = catalogue.variant(name, profile)
        refusal = kind.remote_client_refusal(variant) if client_host else None
        if refusal:
            if named:
                raise BenchError(f"environment '{name}' cannot serve a client on another host: {refusal}")
            skipped[name] = f"cannot serve a client on another host: {refusal}"
            continue
        ok, why = kind.availability(variant, allow_tcg=allow_tcg)
        if not ok:
            if named:
                raise BenchError(f"environment '{name}' is not available here: {why}")
            skipped[name] = why
            continue
        chosen[name] = PlannedEnvironment(name, kind, variant, spec.description, spec.dimension,
                                          spec.baseline, tuple(spec.affects))
    return chosen, skipped


def _cells(name: str, suite: SuiteSpec, workloads: list[WorkloadConfig], chosen: dict[str, PlannedEnvironment],
           skipped: dict[str, str], named: bool) -> tuple[dict[str, list[str]], dict[tuple[str, str], str]]:
    """Which workload runs where: every environment, unless the suite pairs it with `only` some
    or the environment's kind cannot run it. `only` holds both, and run.json keeps it, so that
    a resumed run has the same cells; the cells a kind refuses are said with why. An environment
    left with no cell is not provisioned (removed from `chosen`, said in `skipped`)."""
    for env in list(chosen):   # a Compose file's application: it runs only some workloads
        e = chosen[env]
        refusals = [e.kind.refusal(e.variant, TOOLS[w.tool]) for w in workloads]
        if all(r is not None for r in refusals):
            if named:
                raise BenchError(f"environment '{env}' runs none of suite {name}'s workloads: {refusals[0]}")
            skipped[env] = f"runs none of suite {name}'s workloads: {refusals[0]}"
            del chosen[env]
    if not chosen:
        raise BenchError("no environment is available here; see `bench list`")
    only: dict[str, list[str]] = {}
    left_out: dict[tuple[str, str], str] = {}
    for w in workloads:
        for n, e in chosen.items():
            refusal = e.kind.refusal(e.variant, TOOLS[w.tool])
            if refusal is not None and workload_runs(suite.only, n, w.name):
                left_out[(n, w.name)] = str(refusal)
        allowed = [n for n, e in chosen.items() if workload_runs(suite.only, n, w.name)
                   and e.kind.refusal(e.variant, TOOLS[w.tool]) is None]
        if w.name in suite.only or len(allowed) < len(chosen):
            only[w.name] = allowed
    for env in list(chosen):
        if not any(workload_runs(only, env, w.name) for w in workloads):
            del chosen[env]   # provisioning it would measure nothing
            skipped[env] = "no workload of the suite runs there"
    if not chosen:
        raise BenchError(f"no workload of suite '{name}' runs in the environments chosen")
    return only, {cell: why for cell, why in left_out.items() if cell[0] in chosen}


def _check_host_programs(workloads: list[WorkloadConfig], chosen: dict[str, PlannedEnvironment],
                         client_host: str | None, context: ExecutionContext) -> None:
    """The host is the clients' side (unless --client-host), and the only environment whose
    programs can be checked before provisioning; others are checked once they exist."""
    missing = set()
    for w in workloads:
        tool = TOOLS[w.tool]
        needed = [] if client_host else tool.client_requirements()
        if any(e.kind is HostEnvironment for e in chosen.values()):
            needed += [(p, " ".join(tool.packages)) for p in tool.programs]
        for program, package in needed:
            if not HostEnvironment.has_program_here(program, context.path):
                missing.add((program, package))
    if missing:
        programs = ", ".join(sorted(p for p, _ in missing))
        packages = " ".join(sorted({pk for _, pk in missing}))
        raise BenchError(f"missing on this host: {programs}; install with `apt-get install {packages}` "
                         f"(netperf is in Debian's non-free component), or run scripts/setup.sh")


def _new_folder(out: Path, run_id: str | None, suite: str) -> str:
    """The run's id, its folder under `out` not there yet and `out` writable."""
    run_id = check_run_id(run_id) if run_id else new_run_id(suite)
    alive = live.holder(run_id)
    if alive is not None:   # under this --out or another: its resources carry this id too
        raise BenchError(f"{alive}: choose another --run-id")
    if (out / run_id).exists():
        raise BenchError(f"{out / run_id} already exists: choose another --run-id")
    _check_writable(out)
    return run_id


def workload_runs(only: dict[str, list[str]], environment: str, workload: str) -> bool:
    return workload not in only or environment in only[workload]


def client_preflight(workloads: list[WorkloadConfig], client_host: str | None,
                     ssh_options: tuple[str, ...]) -> ClientHost | None:
    """With --client-host: connect once, check the client programs there, and find this host's
    address facing it, on which every environment then publishes its servers."""
    if not client_host:
        return None
    programs = {p: pkg for w in workloads for p, pkg in TOOLS[w.tool].client_requirements()}
    return preflight(client_host, tuple(ssh_options), programs)


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


def resume(catalogue: Catalogue, out: Path, run_id: str, retry_failed: bool = False) -> tuple[Plan, RunStore]:
    """The plan of an interrupted run, from its own run.json (not today's catalogue, whose
    parameters may have changed since), with the options it ran with. retry_failed: also the
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
        RunManifest.from_json(manifest)   # its course: status and pid of the right types
        p = Plan.from_manifest(manifest, Path(out), retry_failed)
        if not p.workloads or not p.environments:
            raise BenchError(f"cannot resume {run_id}: its run.json lists no workloads or no environments")
        for name, e in p.environments.items():
            ok, why = e.kind.availability(e.variant, allow_tcg=p.options.allow_tcg)
            if not ok:
                raise BenchError(f"cannot resume: environment '{name}' is not available here: {why}")
        # the run's own client: a resumed run's clients run where its first ones did, connected anew
        client = p.client and client_preflight(p.workloads, p.client.destination, p.client.ssh_options)
    except (KeyError, TypeError, ValueError, AttributeError, ValidationError) as e:
        # a run.json edited or damaged by hand: say what is missing instead of a traceback
        raise BenchError(f"cannot resume {run_id}: its run.json lacks or garbles {excerpt(str(e))} "
                         f"(a run folder bench wrote has it)") from None
    return dataclasses.replace(p, run_id=run_id, client=client), store
