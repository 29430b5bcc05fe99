"""What an instance costs: start-up, stop, the time to a first served request, and the host
memory idle instances hold, alone and many at once (the density suite).

The "tool" is bench's own instance machinery: every environment starts further instances of
itself with the code that made it (the same container handle and options, the same domain
code, the same image; environments/base.py, Instance), so a runc container, a gVisor sandbox,
a Podman container and a VM are started, judged ready and measured by one rule:

- start: from the request (container create+start, domain create, fork) until a first exec of
  `true` inside has returned; stop: from the request until the engine says it is gone.
- served: from the request until a Redis server started inside answers PING from the client's
  side, through the environment's own network path: the cold start a user waits for.
- density: N instances requested at once (one thread each); each one's start latency from the
  common request, then, after a settle period, the PSS of the host processes the N add (shims,
  conmon, runsc's sandbox and gofer, QEMU; /proc/PID/smaps_rollup) and the drop of the host's
  MemAvailable beside it, both per instance; then N stopped at once.

A repetition writes what it timed as JSON, which parse() reads; nothing else is its output.
Bounds: a point larger than the kind's instance_cap is left out, and so is one whose instances
would take MemAvailable below memory_floor_mib, each said in the raw output.
"""

from __future__ import annotations

import itertools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from pydantic import Field, field_validator

from .. import hostmem
from ..environments.base import Environment, ExecResult, Instance
from ..errors import ToolError
from ..model import Measurement
from .base import CellContext, Params, Pause, RawOutput, Seconds, Workload, _bounded
from .redis import Redis

# The most instances one point of a sweep may ask for, whatever the kind (its own cap may be
# lower): a larger number is refused when the catalogue is read.
MAX_INSTANCES = 64
MIB = 1024

# The metrics, by name: the report's "Start-up and density" section reads them.
START, STOP, SERVED, MAKESPAN = "start_latency", "stop_latency", "served_latency", "start_makespan"
MEMORY_PER_INSTANCE, MEMORY_TOTAL = "memory_pss_per_instance", "memory_pss_total"
AVAILABLE_DROP = "memory_available_drop_per_instance"

# Names unique within this process: a retried repetition never meets a name still in use.
_serial = itertools.count(1)


class InstanceParams(Params):
    measure: Literal["start", "served", "density"] = "start"
    starts: _bounded(1, 10_000) = 10        # start/served: serial start-stop cycles per repetition
    budget: Seconds = 120                   # start/served: no new cycle after this many seconds
    instances: list[_bounded(1, MAX_INSTANCES)] = Field(default=[1, 2, 4, 8, 16], min_length=1)
    settle: Pause = 5                       # density: seconds idle before memory is read
    memory_floor_mib: _bounded(0, 1 << 24) = 2048   # never take MemAvailable below this

    @field_validator("instances")
    @classmethod
    def increasing(cls, values: list[int]) -> list[int]:
        if sorted(set(values)) != values:
            raise ValueError("the instance counts must be distinct and increasing")
        return values


class Instances(Workload):
    tool = "instances"
    sweeps = ("instances",)
    programs = ("redis-server",)            # the served measure's server
    client_programs = ("redis-cli",)
    client_packages = ("redis-tools",)
    packages = ("redis-server",)
    raw_suffix = "json"
    needs_instances = True
    resource = "instance costs"
    against_native = False   # absolute: start-up and idle memory have no native to divide by
    Params = InstanceParams

    def timeout(self, p: InstanceParams) -> float:
        if p.measure == "density":
            return 300 + len(p.instances) * (p.settle + 600)
        return p.budget + 600  # the last cycle may begin just before the budget ends

    def version(self, env: Environment) -> str:
        import importlib.metadata

        try:  # the measuring code is bench's own: its version is the tool's
            return f"bench {importlib.metadata.version('bench')}"
        except importlib.metadata.PackageNotFoundError:
            return "bench (not installed)"

    def refusal_here(self, p: InstanceParams) -> str | None:
        total = hostmem.mem_total_kib() // MIB
        if p.memory_floor_mib >= total:
            return (f"its memory floor ({p.memory_floor_mib} MiB) is not below this host's memory ({total} MiB): "
                    f"no instance could ever start")
        return None

    def run(self, ctx: CellContext) -> RawOutput:
        start = time.monotonic()
        record: dict[str, Any] = {"measure": ctx.params.measure, "env_kind": ctx.env.kind,
                                  "instance_cap": ctx.env.instance_cap, "ksm": hostmem.ksm_state()}
        if ctx.params.measure == "density":
            record["points"] = self._sweep(ctx)
        else:
            record["cycles"] = self._serial(ctx, served=ctx.params.measure == "served")
        text = json.dumps(record, indent=1)
        return RawOutput(text, ExecResult(["bench", "instances", ctx.params.measure], 0, text, "",
                                          time.monotonic() - start))

    # -- serial start-stop cycles ------------------------------------------------------------

    def _serial(self, ctx: CellContext, served: bool) -> list[dict[str, float]]:
        p: InstanceParams = ctx.params
        cycles = []
        deadline = time.monotonic() + p.budget
        for _ in range(p.starts):
            if cycles and time.monotonic() > deadline:
                break
            instance = ctx.env.instance(next(_serial), n_ports=1 if served else 0)
            try:
                instance.prepare()
                t0 = time.monotonic()
                instance.start()
                cycle = {"start_s": time.monotonic() - t0}
                if served:
                    self._serve(ctx, instance)
                    cycle["served_s"] = time.monotonic() - t0
                t1 = time.monotonic()
                instance.stop()
                cycle["stop_s"] = time.monotonic() - t1
                cycles.append(cycle)
            finally:
                _end(instance)
        return cycles

    @staticmethod
    def _serve(ctx: CellContext, instance: Instance) -> None:
        """Start redis-server inside and wait until PING is answered from the client's side."""
        env = instance.env
        port = env.ports[0]
        env.start_server(Redis.server_argv(env.listen_address, port, env.workdir), log_name="redis-served")
        address, public = env.endpoint(port)
        argv = env.client_command(["redis-cli", "-h", address, "-p", str(public), "PING"])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            r = ctx.client.exec(argv, timeout=5)
            if r.ok and r.stdout.strip() == "PONG":
                return
            time.sleep(0.01)
        raise ToolError(f"redis-server in {env.name} did not answer PING within 120 s")

    # -- N at once ---------------------------------------------------------------------------

    def _sweep(self, ctx: CellContext) -> list[dict[str, Any]]:
        p: InstanceParams = ctx.params
        points: list[dict[str, Any]] = []
        per_instance_mib = ctx.env.instance_memory_bound_mib()  # until one is measured
        for n in p.instances:
            if n > ctx.env.instance_cap:
                points.append({"instances": n, "skipped": f"beyond the {ctx.env.kind} kind's cap of "
                                                          f"{ctx.env.instance_cap} instances at once"})
                continue
            available = hostmem.mem_available_kib() / MIB
            if available - n * per_instance_mib < p.memory_floor_mib:
                points.append({"instances": n, "skipped": f"{n} x ~{per_instance_mib:.0f} MiB would take "
                                                          f"MemAvailable ({available:.0f} MiB) below the floor "
                                                          f"of {p.memory_floor_mib} MiB"})
                continue
            point = self._point(ctx.env, n, p.settle)
            points.append(point)
            measured = [v for v in (point.get("pss_kib"), point.get("available_drop_kib")) if v]
            if measured:  # the next point's guard: what one instance took, with a margin
                per_instance_mib = max(1.0, 1.5 * max(measured) / n / MIB)
        return points

    @staticmethod
    def _point(env: Environment, n: int, settle: float) -> dict[str, Any]:
        instances = [env.instance(next(_serial)) for _ in range(n)]
        try:
            for instance in instances:
                instance.prepare()
            before = hostmem.mem_available_kib()
            t0 = time.monotonic()

            def start(instance: Instance) -> float:
                instance.start()
                return time.monotonic() - t0

            # One thread per instance: all are requested at once. The pool's exit waits for
            # every start, so that a Ctrl-C stops only instances whose start has returned.
            with ThreadPoolExecutor(max_workers=n) as pool:
                starts = [f.result() for f in [pool.submit(start, i) for i in instances]]
            time.sleep(settle)
            pids = [i.host_pids() for i in instances]
            pss = hostmem.pss_total_kib(pid for group in pids for pid in group) if all(pids) else None
            drop = before - hostmem.mem_available_kib()

            def stop(instance: Instance) -> float:
                t = time.monotonic()
                instance.stop()
                return time.monotonic() - t

            with ThreadPoolExecutor(max_workers=n) as pool:
                stops = [f.result() for f in [pool.submit(stop, i) for i in instances]]
            return {"instances": n, "start_s": starts, "makespan_s": max(starts), "stop_s": stops,
                    "settle_s": settle, "pss_kib": pss, "available_drop_kib": drop,
                    "processes": sum(len(g) for g in pids)}
        finally:
            for instance in instances:
                _end(instance)

    # -- reading it --------------------------------------------------------------------------

    @staticmethod
    def parse(text: str, params: Any) -> list[Measurement]:
        try:
            record = json.loads(text)
        except ValueError as e:
            raise ToolError(f"not the instance measurements' JSON: {e}") from None
        out: list[Measurement] = []
        if record.get("measure") == "density":
            for point in record.get("points", []):
                if point.get("skipped"):
                    continue
                at = {"instances": point["instances"]}
                n = point["instances"]
                out += [Measurement(START, v, "s", "lower", at) for v in point["start_s"]]
                out.append(Measurement(MAKESPAN, point["makespan_s"], "s", "lower", at))
                out += [Measurement(STOP, v, "s", "lower", at) for v in point["stop_s"]]
                if point.get("pss_kib") is not None:
                    out.append(Measurement(MEMORY_PER_INSTANCE, point["pss_kib"] / n / MIB, "MiB", "lower", at))
                    out.append(Measurement(MEMORY_TOTAL, point["pss_kib"] / MIB, "MiB", "lower", at))
                    out.append(Measurement(AVAILABLE_DROP,
                                           point["available_drop_kib"] / n / MIB, "MiB", "lower", at))
        else:
            at = {"instances": 1}
            for cycle in record.get("cycles", []):
                if "served_s" in cycle:  # first: the served measure's headline
                    out.append(Measurement(SERVED, cycle["served_s"], "s", "lower", at))
                out.append(Measurement(START, cycle["start_s"], "s", "lower", at))
                out.append(Measurement(STOP, cycle["stop_s"], "s", "lower", at))
        if not out:
            raise ToolError("no instance was measured (every point of the sweep was left out; the raw output says why)")
        return out


def _end(instance: Instance) -> None:
    """Stop (if still running) and discard: on success, failure and Ctrl-C alike."""
    try:
        instance.stop()
    finally:
        instance.discard()
