"""A run carried out as its plan says: provision -> rounds of repetitions -> teardown.

Nothing is provisioned until the whole plan has been checked (bench/plan.py: suite,
workloads, parameters, environments and their availability, the tools on the host). Cells
(environment x workload) run in rounds, one repetition of every cell per round, with the
environments of a workload in a shuffled order each round, so that a drift of the machine
(thermal, a neighbour's load) spreads over every environment instead of landing on one. Every finished repetition is on
disk before the next starts. Teardown runs on success, failure, Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from . import adaptive, doctor, interrupts, metadata, parity
from .environments import Environment
from .environments.base import LOOPBACK, BackendError
from .environments.context import memory_policy, memory_policy_record, numa_nodes
from .environments.host import HostEnvironment
from .environments.remote import RemoteHost
from .errors import BenchError, ToolError
from .model import RETRIED_CAUSES, Failure, RunManifest, Sample
from .plan import Plan, RunOptions, Step, schedule
from .progress import Progress
from .store import RunStore
from .text import human
from .workloads import TOOLS, CellContext, RawOutput

DEFAULT_MAX_REPS = 10  # --target-ci without --max-reps: the study's n
STDERR_TAIL = 2000  # characters of a failed tool's stderr kept in failures.jsonl
# After a backend fault, how long re-provisioning waits for the backend to answer again (a
# daemon restarted by systemd or by hand), and how often it asks.
BACKEND_WINDOW = 120.0
BACKEND_POLL = 2.0


def guest_size(guest: dict[str, int], host_cpus: int) -> dict[str, int]:
    """The variant parameters a workload's guest size sets. vCPUs as many as the host's or more
    is a guest's default (all the host's CPUs): no parameter, so no second boot for it."""
    size = dict(guest)
    if size.get("vcpus", 0) >= host_cpus:
        del size["vcpus"]
    return size


def done_repetitions(store: RunStore, retry_failed: bool = False) -> frozenset[tuple[str, str, int]]:
    """(environment, workload, repetition) that a run has finished: measured or failed (with
    retry_failed, a failure of the environment rather than the tool is not finished)."""
    done = {(s.environment, s.workload, s.repetition) for s in store.samples() if s.workload != "provision"}
    done |= {(f["environment"], f["workload"], f["repetition"]) for f in store.failures()
             if f["repetition"] > 0 and not (retry_failed and f.get("cause") in RETRIED_CAUSES)}
    return frozenset(done)


def _environment_gone(env: Environment, client: Environment, settle: float = 1.0) -> BackendError | None:
    """Why env's backend is gone, asked with a trivial command, else None. Asked twice, `settle`
    seconds apart: a container removed under a running tool kills the tool first and is gone a
    moment later, and in between a command may still start there (or start and fail). The
    client's side of it too, run as the tools' clients are (env.client_command): a client
    network namespace of the run's own deleted under it is the environment's fault, not the
    tool's ("Cannot open network namespace"), and provisioning makes it anew."""
    for attempt in range(2):
        if attempt:
            time.sleep(settle)
        for where, run in (("there", env), ("on the client's side", client)):
            argv = ["true"] if run is env else env.client_command(["true"])
            try:
                r = run.exec(argv, timeout=30)
            except BackendError as e:  # the backend's own answer
                return e
            if not r.ok:
                return BackendError(f"a trivial command (true) failed {where} too: exit status {r.returncode}"
                                    f"{': ' + one_line(r.stderr) if r.stderr.strip() else ''}")
    return None


def backend_reason(e: BackendError) -> str:
    """A backend fault in a failure record: the backend's own error, its type and words
    ("APIError: 500 Server Error ...", "libvirtError: ..."), or the kind's words when it said so itself."""
    cause = e.__cause__
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(e)


def last_words(stderr: str, limit: int = 200) -> str:
    """': ' and the last line a failed tool wrote on stderr, cut; '' when it wrote none."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1]
    return ": " + (last if len(last) <= limit else last[: limit - 1] + "…")


def one_line(text: str, limit: int = 300) -> str:
    """A daemon's error as one line of a failure record or a message (its first line, cut)."""
    first = (text.strip().splitlines() or [""])[0]
    return first if len(first) <= limit else first[: limit - 1] + "…"


class Runner:
    def __init__(self, p: Plan, options: RunOptions, report: Callable[[str], None] | None = None,
                 resume: RunStore | None = None):
        self.plan = p
        self.options = options
        self.say = report or (lambda line: print(line, file=sys.stderr, flush=True))
        self.store: RunStore | None = resume
        self.envs: dict[str, Environment] = {}
        self.client: Environment = (RemoteHost(p.client, p.run_id, context=options.context) if p.client
                                    else HostEnvironment("client", {}, p.run_id, context=options.context))
        self.parity_ok: dict[str, bool] = {}  # environment -> no unintended decisive difference
        self.manifest: RunManifest | None = None
        self.tool_seconds = 0.0
        self.failures = 0
        self.resuming = resume is not None
        self.reprovisioned: set[str] = set()  # environments provisioned anew after a backend fault
        self.lost: dict[str, str] = {}        # environments given up on, and why
        self.measuring = False                # past provisioning: an error now stops a run that ran

    def execute(self) -> RunStore:
        p = self.plan
        started = time.time()
        done: frozenset[tuple[str, str, int]] = frozenset()
        if self.store is not None:  # --resume: the same folder, the steps it lacks
            dead = self.store.acquire()   # one writer: a second --resume stops here, having made nothing
            if dead and dead != os.getpid():
                self.say(f"taking over run {p.run_id} from its writer (pid {dead}), which is gone")
            self._clean_leftovers()
            dropped = self.store.drop_incomplete()
            if dropped:
                self.say(f"dropping {dropped} half-written line(s) of samples.jsonl: that repetition runs again")
            self.manifest = RunManifest.from_json(self.store.manifest())   # plan.resume has read it
            done = done_repetitions(self.store, self.options.retry_failed)
            self.manifest.observed.setdefault("resumed_at", []).append(
                dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat())
            self.manifest.status, self.manifest.pid = "running", os.getpid()
            self.store.write_manifest(self.manifest)
        else:
            self.store = RunStore.create(self.options.out, p.run_id)
            self.store.acquire()
            self.manifest = self._new_manifest(started)
            self.store.write_manifest(self.manifest)
        previous_wall = self.manifest.observed.get("wall_seconds", 0.0)
        previous_tool = self.manifest.observed.get("tool_seconds", 0.0)
        status = "failed"
        try:
            with interrupts.as_interrupt():
                self._provision()
                self.measuring = True
                steps = schedule(p, done)
                with Progress(steps) as progress:
                    for step in steps:
                        interrupts.raise_if_interrupted()
                        progress.begin(step)
                        progress.end(self._run_step(step))
                    if self.options.target_ci:
                        self._repeat_until_target(progress)
                interrupts.raise_if_interrupted()
            status = "complete"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            # Teardown must run even if a second Ctrl-C arrives during it.
            with interrupts.ignored():
                self._teardown()
                ended = time.time()
                measured = {(s.environment, s.workload, s.repetition) for s in self.store.samples()
                            if s.workload != "provision"}
                self.manifest.status = status
                self.manifest.observed.update(
                    ended_at=dt.datetime.fromtimestamp(ended, dt.timezone.utc).isoformat(),
                    wall_seconds=round(previous_wall + ended - started, 3),
                    tool_seconds=round(previous_tool + self.tool_seconds, 3),
                    samples=len(self.store.samples()),
                    failures=len(self.store.failures()),
                    repetitions_done=len(measured),
                )
                self.store.write_manifest(self.manifest)
                self.store.release()
        return self.store

    def _repeat_until_target(self, progress: Progress) -> None:
        """Rounds of one more repetition for every cell whose interval is still too wide."""
        p, target = self.plan, self.options.target_ci
        cap = max(self.options.max_reps or DEFAULT_MAX_REPS, p.repetitions)
        rng = random.Random(p.seed + 1)  # an order of its own, as reproducible as the rounds before
        by_name = {w.name: w for w in p.workloads}
        while True:
            reps: dict[tuple[str, str], int] = {}
            for env, workload, rep in done_repetitions(self.store):
                reps[(env, workload)] = max(reps.get((env, workload), 0), rep)
            short = adaptive.cells_short_of_target(self.store.samples(), reps, target, cap)
            order = adaptive.next_round(short, list(by_name), list(self.envs), rng)
            if not order:
                return
            self.say(f"{len(order)} cell(s) not yet within ±{target:g} % (95 % interval): one more round")
            steps = [Step(env, by_name[workload], reps[(env, workload)] + 1) for env, workload in order]
            progress.extend(steps)
            for step in steps:
                interrupts.raise_if_interrupted()
                progress.begin(step)
                progress.end(self._run_step(step))

    def _clean_leftovers(self) -> None:
        """A killed run's containers, domains and scratch folders carry its id: the resumed run
        would collide with them, and they must not run beside the measurements."""
        from . import cleanup

        for leftover in cleanup.find(self.plan.run_id, self.options.scratch):
            self.say(f"removing what the interrupted run left: {leftover.kind} {leftover.name}")
            leftover.remove()

    def _new_manifest(self, started: float) -> RunManifest:
        p = self.plan
        return RunManifest(
            run_id=p.run_id, suite=p.suite, profile=p.profile, repetitions=p.repetitions, order_seed=p.seed,
            workloads={w.name: w.to_json() for w in p.workloads},
            # run.json's keys are sorted; these keep the suite's and the user's order.
            workload_order=[w.name for w in p.workloads],
            environment_order=list(p.environments),
            environments={n: e.to_json() for n, e in p.environments.items()},
            skipped_environments=p.skipped_environments, only=p.only,
            scratch=str(self.options.scratch), allow_tcg=self.options.allow_tcg,
            target_ci=self.options.target_ci, max_reps=self.options.max_reps,
            pass_env=dict(self.options.context.passed), allow_mismatch=self.options.allow_mismatch,
            # Where the clients ran; a remote one's metadata is added once it is connected.
            client={"kind": "remote", **p.client.as_dict()} if p.client else {"kind": "host"},
            status="running", pid=os.getpid(),
            observed={
                "started_at": dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(),
                "command": sys.argv,
                "declared_context": {**self.options.context.as_dict(), "memory_policy": memory_policy_record(
                    sorted({w.name for w in p.workloads if TOOLS[w.tool].numa_interleave}), numa_nodes())},
                "host": metadata.host_metadata(),
                "machine_warnings": doctor.machine_warnings(),
            })

    # -- stages ------------------------------------------------------------------------------

    def _provision(self) -> None:
        n_ports = max((TOOLS[w.tool].server_ports for w in self.plan.workloads), default=0)
        scratch = str(self.options.scratch)
        client = self.plan.client
        if client:
            self.say(f"connecting to client host {client.destination} ({client.address}); servers are "
                     f"published on {client.publish_address}")
        self.client.provision(scratch, 0)
        if client:  # a resumed run connects anew: the address facing the client may have changed
            self.manifest.client = {"kind": "remote", **client.as_dict(), "metadata": self.client.metadata()}
            self.store.write_manifest(self.manifest)
        self.n_ports = n_ports
        for name, e in self.plan.environments.items():
            interrupts.raise_if_interrupted()
            self.say(f"provisioning {name} ({e.kind.kind})")
            self._provision_one(name, e.variant, again=self.resuming)
        versions: dict[str, dict[str, str]] = {}
        for name, env in self.envs.items():
            self.manifest.environments[name]["variant_as_run"] = env.effective_variant()
            self.manifest.environments[name]["metadata"] = env.metadata()
            self.manifest.environments[name]["publish_address"] = env.publish_address
            versions[name] = {w.tool: TOOLS[w.tool].version(env) for w in self.plan.workloads}
            self.manifest.environments[name]["tool_versions"] = versions[name]
        self.manifest.observed["client_tool_versions"] = {
            w.tool: TOOLS[w.tool].version(self.client) for w in self.plan.workloads
            if TOOLS[w.tool].client_programs}
        self.manifest.observed["tool_version_mismatches"] = metadata.version_mismatches(versions)
        self.store.write_manifest(self.manifest)
        self._check_parity()

    def _provision_one(self, name: str, variant: BaseModel, again: bool = False) -> Environment:
        """Make one environment (with this variant) and record what provisioning measured.
        again: this provisioning repeats one the run already measured (a resumed run's, or a
        re-provisioning after a backend fault), rather than one an uninterrupted run makes."""
        e = self.plan.environments[name]
        env = e.kind(name, variant, self.plan.run_id, allow_tcg=self.options.allow_tcg, context=self.options.context,
                     publish_address=self.plan.client.publish_address if self.plan.client else LOOPBACK)
        self.envs[name] = env  # registered before provision(), so a half-made one is torn down
        # What provisioning measured (a VM's boot-to-ready time) is a sample, as repetition 1, 2...
        # (a guest booted anew at another size for a workload is one too). Provisioning *again*
        # what the run has measured already (a resumed run, a re-provisioning after a backend
        # fault) is an attempt, recorded in run.json, so that a resumed run holds the samples an
        # uninterrupted one does. Each one's console log and domain go to provision/, provision-2/...
        provisioned = [s for s in self.store.samples() if s.environment == name and s.workload == "provision"]
        made = len(list((self.store.path / "raw" / name).glob("provision*")))
        folder = "provision" if made == 0 else f"provision-{made + 1}"
        try:
            env.provision(str(self.options.scratch), self.n_ports)
        except BackendError as exc:  # a daemon's error: one line, and the details in the run folder
            reason = backend_reason(exc)
            self.store.append_failure(Failure(self.plan.run_id, name, "provision", 0, reason,
                                              "".join(traceback.format_exception(exc))))
            raise BenchError(f"provisioning {name} failed: {reason}") from None
        finally:
            for artifact, text in env.artifacts().items():
                self.store.write_raw([name, folder, artifact], text)
        variant_as_run = env.effective_variant()
        same = json.dumps(variant_as_run, sort_keys=True, default=str)
        if again and any(json.dumps(s.variant, sort_keys=True, default=str) == same for s in provisioned):
            self.manifest.environments[name].setdefault("provision_attempts", []).append({
                "started_at": dt.datetime.now(dt.timezone.utc).isoformat(), "raw": f"raw/{name}/{folder}",
                "measurements": {m.metric: m.value for m in env.measurements}})
            self.store.write_manifest(self.manifest)
        else:
            self.store.append_samples([
                Sample(self.plan.run_id, name, e.kind.kind, "provision", e.kind.kind, m.metric, m.unit, m.value,
                       m.better, 1 + len({s.repetition for s in provisioned}), variant=variant_as_run)
                for m in env.measurements])
        if env.effective_variant().get("accel") == "tcg":
            self.say(f"{name} runs under TCG: its numbers are EMULATED, not KVM measurements")
        return env

    def _fit_guest(self, step: Step) -> None:
        """A VM guest of the size the step's workload asks for (the study sized its guests per
        test: 1 vCPU for netperf and Redis). A guest of another size is torn down and booted
        anew at that size; its metadata joins run.json's `guests`, and every sample carries the
        size it ran at (vcpus, memory_mib). The parity probe ran on the first guest: a resized
        one differs from it in vCPUs and memory only, both intended (parity.explain)."""
        e = self.plan.environments[step.environment]
        if not {"vcpus", "memory_mib"} <= set(e.kind.Variant.model_fields):
            return   # not a guest: a workload's guest size means nothing to it
        size_asked = guest_size(step.workload.guest, os.cpu_count() or 1)
        want = e.variant.model_copy(update=size_asked)
        env = self.envs[step.environment]
        if env.variant == want:
            return
        size = ", ".join(f"{k}={getattr(want, k)}" for k in ("memory_mib", "vcpus")
                         if k in want.model_fields_set)
        self.say(f"{step.environment}: a guest of {size or 'its own size'} for {step.workload.name}: booting it anew")
        env.teardown()
        del self.envs[step.environment]
        env = self._provision_one(step.environment, want)
        self.manifest.environments[step.environment].setdefault("guests", []).append(
            {"for": step.workload.name, "variant_as_run": env.effective_variant(), "metadata": env.metadata()})
        self.store.write_manifest(self.manifest)

    def _check_parity(self) -> None:
        """Measure the execution context in every environment (and where clients run), compare
        each with native's, record both in run.json, and stop before measuring on an unintended
        difference in what decides a result, unless --allow-mismatch (see parity.py)."""
        p = self.plan
        tools = {w.name: TOOLS[w.tool] for w in p.workloads}
        native_env = self.envs.get("host")
        if native_env is None:  # native is measured in any case
            native_env = HostEnvironment("native", {}, p.run_id, context=self.options.context)
            native_env.provision(str(self.options.scratch), 0)
        try:
            native = parity.measure(native_env, parity.programs_of(tools.values()))
        finally:
            if native_env is not self.envs.get("host"):
                native_env.teardown()
        contexts: dict[str, dict[str, str]] = {"native": native}
        results: dict[str, list[dict[str, Any]]] = {}
        blocking: list[tuple[str, parity.Difference]] = []

        def check(name: str, env: Environment, reference: dict[str, str], programs: list[str],
                  owner: str) -> None:
            """Probe env, compare it with reference, and charge what differs to `owner`."""
            contexts[name] = parity.measure(env, programs)
            found = parity.compare(reference, contexts[name], type(env), env.variant_as_run())
            results[name] = [d.as_dict() for d in found]
            blocking.extend((owner, d) for d in found if d.blocking)
            self.parity_ok[owner] = self.parity_ok.get(owner, True) and not any(d.blocking for d in found)

        client_programs = parity.programs_of(tools.values(), "client_programs")
        if client_programs:
            contexts["client"] = parity.measure(self.client, client_programs)
        for name, env in self.envs.items():
            mine = [t for w, t in tools.items() if p.runs(name, w)]
            check(name, env, native, parity.programs_of(mine), name)
            client = env.client_environment(self.client)
            if client is not self.client and any(t.client_programs for t in mine):
                # a peer container: compared with the run's client, as the clients' side
                check(f"{name}/client", client, contexts["client"], parity.programs_of(mine, "client_programs"),
                      name)
        self.manifest.observed["execution_context"] = contexts
        self.manifest.observed["parity"] = results
        self.store.write_manifest(self.manifest)
        if not blocking:
            self.say(f"parity: every environment runs the tools as native does ({len(self.envs)} checked)")
            return
        name, d = blocking[0]
        more = f" ({len(blocking) - 1} more in run.json's parity)" if len(blocking) > 1 else ""
        if self.options.allow_mismatch:
            for name, d in blocking:
                self.say(f"parity: UNINTENDED difference, measuring anyway (--allow-mismatch): {d.one_line(name)}")
            return
        raise BenchError(f"parity: {d.one_line(name)}{more}: the tools would not run alike; "
                         f"{parity.fix(d)}, or measure anyway with --allow-mismatch (samples marked "
                         f"parity_ok=false)")

    def _recover(self, name: str, reason: str) -> str:
        """Provision `name` anew after a backend fault, once per run; a second fault, or a
        provisioning that fails, gives the environment up: its remaining steps are recorded
        failures at once instead of each waiting on a dead daemon."""
        if name in self.reprovisioned:
            self.lost[name] = reason
            return f"{name} failed again: its remaining repetitions are recorded failures"
        self.reprovisioned.add(name)
        self.say(f"{name}: its backend failed ({one_line(reason, 120)}): provisioning it anew, once")
        env = self.envs.pop(name)
        try:
            env.teardown()
        except Exception as e:  # what is left is named; the new one gets its own resources
            self.say(f"teardown of {name} failed: {one_line(str(e))}; `bench cleanup --run-id {self.plan.run_id}` "
                      f"removes what is left")
        down = self._wait_for_backend(name, env.variant)
        if down is not None:
            self.envs[name] = env  # torn down already; kept so that the run's teardown is uniform
            self.lost[name] = down
            return f"{name} given up: {down}; its remaining repetitions are recorded failures"
        try:
            new = self._provision_one(name, env.variant, again=True)
        except BenchError as e:
            self.envs[name] = env  # torn down already; kept so that the run's teardown is uniform
            self.lost[name] = str(e)
            return f"{name} could not be provisioned again ({one_line(str(e))}): its remaining repetitions fail"
        self.manifest.observed.setdefault("reprovisioned", []).append({
            "environment": name, "after": reason, "at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "metadata": new.metadata()})
        self.store.write_manifest(self.manifest)
        return f"{name} provisioned anew"

    def _wait_for_backend(self, name: str, variant: BaseModel) -> str | None:
        """Until the environment's kind says its backend is there again (dockerd restarted by
        its supervisor, libvirtd back): at most BACKEND_WINDOW seconds, asked every few seconds.
        Provisioning at once, while the daemon is still down, would always fail. Returns why it
        did not come back, or None when it did."""
        kind = self.plan.environments[name].kind
        deadline = time.monotonic() + BACKEND_WINDOW
        ok, why = kind.availability(variant, allow_tcg=self.options.allow_tcg)
        if ok:
            return None
        self.say(f"{name}: waiting up to {BACKEND_WINDOW:.0f} s for its backend to come back ({one_line(why, 120)})")
        while time.monotonic() < deadline:
            time.sleep(min(BACKEND_POLL, max(deadline - time.monotonic(), 0)))
            interrupts.raise_if_interrupted()
            ok, why = kind.availability(variant, allow_tcg=self.options.allow_tcg)
            if ok:
                self.say(f"{name}: its backend is back")
                return None
        return f"its backend did not come back within {BACKEND_WINDOW:.0f} s ({one_line(why, 120)})"

    def _teardown(self) -> None:
        for env in [*self.envs.values(), self.client]:
            try:
                env.teardown()
            except Exception as e:  # keep tearing down the others; say what was left
                self.say(f"teardown of {env.name} failed: {e}; `bench cleanup` removes leftovers")

    def _fail(self, step: Step, reason: str, stderr: str = "", raw: str = "", cause: str = "tool") -> str:
        """Record the step as a failure (its reason, the tail of stderr, its raw output's path)."""
        self.failures += 1
        self.store.append_failure(Failure(self.plan.run_id, step.environment, step.workload.name, step.repetition,
                                          reason, stderr[-STDERR_TAIL:], raw, cause=cause))
        return f"FAILED ({reason})"

    def _backend_failed(self, step: Step, e: BackendError, before: str = "", raw: str = "") -> str:
        """The environment failed, not the tool (dockerd killed, container removed, libvirtd
        restarted): the step is a failure of cause "backend", and the environment is
        provisioned anew, once per run; the other environments go on either way."""
        reason = one_line(backend_reason(e))
        outcome = self._fail(step, before + reason, "".join(traceback.format_exception(e)), raw, cause="backend")
        return f"{outcome}; {self._recover(step.environment, reason)}"

    def _run_step(self, step: Step) -> str:
        """Run one repetition or warm-up; store its raw output and samples or its failure. Only
        a BackendError is the environment's fault; any other exception is bench's, and stops."""
        w = step.workload
        if step.environment in self.lost:
            return self._fail(step, f"{step.environment} was lost earlier: {self.lost[step.environment]}",
                              cause="backend")
        try:
            self._fit_guest(step)
        except BenchError as e:  # a guest of the workload's size did not boot
            self.lost[step.environment] = str(e)
            return self._fail(step, str(e), cause="backend")
        env = self.envs[step.environment]
        tool = TOOLS[w.tool]
        try:
            missing = [p for p in tool.programs if not env.has_program(p)]
        except BackendError as e:  # the backend is gone
            return self._backend_failed(step, e)
        if missing:
            return self._fail(step, f"{', '.join(missing)} not found in {step.environment}; install "
                                    f"{' '.join(tool.packages)} there")
        # The cell's memory policy travels with the cell: the environment's own context stays.
        cell = env.for_cell(memory_policy(tool.numa_interleave, env.shares_host_memory, numa_nodes()))
        ctx = CellContext(env=cell, client=env.client_environment(self.client), params=w.params,
                          timeout=w.timeout, label=w.name)
        try:
            raw = tool.run(ctx)
        except ToolError as e:
            return self._fail(step, str(e))
        except BackendError as e:  # a daemon's error, not the tool's (those are ToolErrors)
            return self._backend_failed(step, e)
        return self._record(step, env, ctx, raw)

    def _record(self, step: Step, env: Environment, ctx: CellContext, raw: RawOutput) -> str:
        """Keep what one run of the tool wrote, then its samples, or why it has none."""
        w, tool = step.workload, TOOLS[step.workload.tool]
        self.tool_seconds += raw.result.duration
        name = f"warmup-{step.warmup}" if step.repetition == 0 else f"rep-{step.repetition}"
        parts = [step.environment, w.name]
        raw_path = self.store.write_raw([*parts, f"{name}.{tool.raw_suffix}"], raw.text)
        if raw.result.stderr.strip():
            self.store.write_raw([*parts, f"{name}.stderr"], raw.result.stderr)
        for key, text in raw.extra.items():
            if text.strip():
                self.store.write_raw([*parts, f"{name}.{key}.txt"], text)

        result = raw.result
        if result.timed_out or result.returncode != 0:
            # A tool killed with its environment (its container removed under it) ends with an
            # exit status like any failed tool: ask the environment whether it is still there.
            gone = _environment_gone(env, ctx.client)
            if gone is not None:
                return self._backend_failed(step, gone, f"exit status {result.returncode}, and then ", raw_path)
        if result.paused:   # its numbers measure the pause: no sample, and --retry-failed runs it again
            return self._fail(step, f"the tool was stopped for about {result.paused:.0f} s of its "
                                    f"{result.duration:.1f} s (SIGSTOP?): a paused repetition measures the pause",
                              result.stderr, raw_path, cause="paused")
        if result.timed_out:
            return self._fail(step, f"timed out after {w.timeout:.0f} s", result.stderr, raw_path)
        if result.returncode != 0:   # the tool's own last words say why ("No space left on device")
            return self._fail(step, f"exit status {result.returncode}{last_words(result.stderr)}", result.stderr,
                              raw_path)
        try:
            measurements = tool.parse(raw.text, w.params)
        except ToolError as e:
            return self._fail(step, f"unparsable output: {e}", result.stderr, raw_path)

        head = measurements[0]
        summary = f"{head.metric}={human(head.value)} {head.unit} ({result.duration:.1f} s)"
        if step.repetition == 0:
            return f"{summary}, discarded"
        kind = self.plan.environments[step.environment].kind.kind
        variant = env.effective_variant()
        self.store.append_samples([
            Sample(self.plan.run_id, step.environment, kind, w.name, w.tool, m.metric, m.unit, m.value,
                   m.better, step.repetition, params={**w.params.model_dump(), **m.params}, variant=variant,
                   parity_ok=self.parity_ok.get(step.environment))
            for m in measurements
        ])
        return summary
