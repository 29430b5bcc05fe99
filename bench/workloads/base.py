"""The workload contract: one module per tool.

A workload knows how to run its tool in an environment (`run`) and how to turn the tool's raw
output into measurements (`parse`, a pure function tested on recorded real output). Its
parameters are a pydantic model, so a typo in a catalogue file is caught before anything is
provisioned. Named configurations of a tool (fio random read, fio sequential read...) are
data in workloads/catalogue/, not code.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ..environments.base import Environment, ExecResult
from ..model import Measurement


class Params(BaseModel):
    """Base of every tool's parameter model: unknown keys are errors, not silently ignored.

    Every number has a type and a range (the bounded types below): a duration of 0 or -5 s
    that would hang a tool until its timeout, a 1e12 that overflows, or a count no machine
    has is refused when the catalogue is read, before anything is provisioned. Numbers are
    strict: `true` is not 1, and "10" is not 10."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _bounded(low: int, high: int):
    return Annotated[int, Field(ge=low, le=high, strict=True)]


DAY = 86_400
Seconds = _bounded(1, DAY)             # a measured duration: at least a second, at most a day
Pause = _bounded(0, 3600)              # an unmeasured one (ramp, warm-up): at most an hour
Threads = _bounded(1, 4096)            # threads, processes, clients, connections of one tool
ThreadsOrAll = _bounded(0, 4096)       # 0: one per CPU of the environment
Count = _bounded(1, 10**9)             # requests, rows, loops: positive, and short of overflow
Bytes = _bounded(1, 1 << 30)           # a message or value size: at most 1 GiB


# The resources of the report's matrix, in its order; a workload's `resource` is one of them.
RESOURCES = ("CPU", "memory", "disk", "network latency", "network throughput", "applications")
# What a workload set against native on none of them measures instead (the density suite).
ABSOLUTE_RESOURCES = ("instance costs",)
# What a clear win over native means on work no environment can do faster than the bare host:
# a leaked variable or another binary (see the report's Parity), not a win. A tool of another
# resource on which a win is implausible says its own words (fio's direct I/O).
IMPLAUSIBLE_WIN = {"CPU": "not plausible for CPU or memory work: see Parity",
                   "memory": "not plausible for CPU or memory work: see Parity"}


@dataclasses.dataclass(frozen=True)
class Facts:
    """What the report needs to know of a workload's tool, recorded in run.json's workloads (its
    `facts`), so that the report reads them from the run and names no tool. The defaults are a
    tool's that run.json no longer knows (an application, compared with native, nothing more)."""

    resource: str = "applications"
    metric_resources: dict[str, str] = dataclasses.field(default_factory=dict)
    extra_metrics: tuple[str, ...] = ()   # besides the headline, the metrics of the first screen
    against_native: bool = True
    implausible_win: str = ""              # "": a win over native is plausible; else what it means
    client_server: bool = False            # a client reaches a server in the environment
    uses_blas: bool = False

    def resource_of(self, metric: str) -> str:
        """The resource a metric measures: the first prefix of metric_resources it has, else the tool's."""
        for prefix, resource in self.metric_resources.items():
            if metric.startswith(prefix):
                return resource
        return self.resource

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "extra_metrics": list(self.extra_metrics)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "Facts":
        """From run.json's `facts` (keys a later bench added take their defaults)."""
        known = {f.name for f in dataclasses.fields(cls)}
        facts = {k: v for k, v in doc.items() if k in known}
        return cls(**{**facts, "extra_metrics": tuple(facts.get("extra_metrics", ())),
                      "metric_resources": dict(facts.get("metric_resources", {}))})


@dataclasses.dataclass(frozen=True)
class CellContext:
    env: Environment      # where the workload (or its server) runs
    client: Environment   # where clients of client/server workloads run: this host, or --client-host
    params: Params        # the workload's parameters, as its tool's model validated them
    timeout: float        # seconds for one repetition's measuring command
    label: str            # unique per cell, usable in file names


@dataclasses.dataclass(frozen=True)
class RawOutput:
    """What one repetition produced: the text parse() reads, and the command that made it."""

    text: str
    result: ExecResult
    extra: dict[str, str] = dataclasses.field(default_factory=dict)  # e.g. a server's log


class Workload(abc.ABC):
    tool: ClassVar[str]                        # the program's name, unique among workloads
    programs: ClassVar[tuple[str, ...]]        # needed inside the environment
    client_programs: ClassVar[tuple[str, ...]] = ()  # needed on the client's host (this one, or --client-host)
    packages: ClassVar[tuple[str, ...]]        # the Debian packages that provide `programs`
    # The Debian package of each client program, in the same order (redis-benchmark is in
    # redis-tools, not redis-server): what to install on a client host.
    client_packages: ClassVar[tuple[str, ...]] = ()
    server_ports: ClassVar[int] = 0            # ports the environment must offer its server
    # The parameters of which one repetition measures several points (Redis' clients), as its
    # measurements' params name them: a sample's point of a sweep. Recorded in run.json, so that
    # the statistics, the report and `bench compare` know them instead of guessing.
    sweeps: ClassVar[tuple[str, ...]] = ()
    # The tiers of a multi-tier workload, each run in env.service(name): one environment runs
    # them all, a Compose environment each in the container of that name.
    services: ClassVar[tuple[str, ...]] = ()
    raw_suffix: ClassVar[str] = "txt"
    # A CPU or memory test: on a host of several NUMA nodes it runs under numactl
    # --interleave=all on the host and in containers, as the study's (context.memory_policy).
    numa_interleave: ClassVar[bool] = False
    # It starts further instances of its environment (the density suite): a kind that cannot
    # make them (Environment.instance) is left out of its cells before anything is provisioned.
    needs_instances: ClassVar[bool] = False
    # The tool's facts (Facts, recorded in run.json): what the report knows of it, from nowhere else.
    # What the tool's numbers measure, in the resources the report's first screen sets side by
    # side (RESOURCES): the tool's, and any metric of it that measures another (a prefix of the
    # metric's name: hpcc's stream_* are memory, its hpl_gflops CPU). No default: every tool
    # says it (checked when its class is defined), so none is filed under a resource by accident.
    resource: ClassVar[str]
    metric_resources: ClassVar[dict[str, str]] = {}
    # Metrics besides the headline that answer a question of their own on the first screen
    # (hpcc's STREAM and RandomAccess: the study's memory results).
    extra_metrics: ClassVar[tuple[str, ...]] = ()
    uses_blas: ClassVar[bool] = False   # its speed is OpenBLAS's kernel's (HPL): the report notes a fallback
    # Whether its numbers are set against native's (a ratio, a verdict). False: they are an
    # instance's own costs in absolute units (the density suite): the host has no instance to
    # divide by, and a container's start against a fork says nothing a reviewer can use.
    against_native: ClassVar[bool] = True
    # What a clear win over native on its headline means when it cannot be one; None: its
    # resource's words (IMPLAUSIBLE_WIN: CPU and memory work), "" for a win that may be real.
    implausible_win: ClassVar[str | None] = None
    Params: ClassVar[type[Params]]
    # OCI runtimes this tool cannot run under, and why: known before anything is made, so a
    # container environment of that runtime leaves the tool's cells out with the reason.
    runtime_refusals: ClassVar[dict[str, str]] = {}

    def refusal_here(self, params: Any) -> str | None:
        """Why these parameters cannot run on this host at all (a memory floor above its
        memory), or None: asked once, before anything is provisioned."""
        return None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A tool's facts are checked when its class is defined: a missing or unknown resource
        is an error there, not a cell the report files under the wrong resource."""
        super().__init_subclass__(**kwargs)
        # (ABCMeta has not yet set __abstractmethods__ here: what is still abstract is looked up.)
        if any(getattr(getattr(cls, name, None), "__isabstractmethod__", False) for name in dir(cls)):
            return
        where = f"workload {cls.__module__}.{cls.__qualname__}"
        if not isinstance(getattr(cls, "resource", None), str):
            raise TypeError(f"{where} declares no `resource` (one of {', '.join(RESOURCES)})")
        allowed = RESOURCES if cls.against_native else RESOURCES + ABSOLUTE_RESOURCES
        for resource in (cls.resource, *cls.metric_resources.values()):
            if resource not in allowed:
                raise TypeError(f"{where}: resource {resource!r} is none of {', '.join(allowed)}")

    @classmethod
    def facts(cls) -> Facts:
        """The tool's facts as run.json records them. A client/server tool is one whose server
        the environment offers ports for."""
        implausible = IMPLAUSIBLE_WIN.get(cls.resource, "") if cls.implausible_win is None else cls.implausible_win
        return Facts(resource=cls.resource, metric_resources=dict(cls.metric_resources),
                     extra_metrics=tuple(cls.extra_metrics), against_native=cls.against_native,
                     implausible_win=implausible, client_server=cls.server_ports > 0, uses_blas=cls.uses_blas)

    @classmethod
    def client_requirements(cls) -> list[tuple[str, str]]:
        """(program, Debian package) of each client program; a tool that names no client
        package falls back to its own packages."""
        packages = cls.client_packages or (" ".join(cls.packages),) * len(cls.client_programs)
        return list(zip(cls.client_programs, packages, strict=True))

    def timeout(self, params: Any) -> float:
        """Default limit for one repetition; catalogue entries may override it."""
        return 300.0

    def scratch_bytes(self, params: Any) -> int:
        """The disk space the workload's data files take in the environment's scratch folder."""
        return 0

    @abc.abstractmethod
    def version(self, env: Environment) -> str:
        """The tool's version as the environment has it ("" when it cannot be told)."""

    @abc.abstractmethod
    def run(self, ctx: CellContext) -> RawOutput:
        """One measured (or warm-up) repetition. Raises ToolError when it cannot even start."""

    @staticmethod
    @abc.abstractmethod
    def parse(text: str, params: Any) -> list[Measurement]:
        """Pure: raw output -> measurements. Raises ToolError on output it cannot read. params:
        the tool's own Params, with which the output was made."""


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def dpkg_version(env: Environment, package: str) -> str:
    """A Debian package's version in env: the most exact identity of a binary we can get."""
    r = env.exec(["dpkg-query", "-W", "-f=${Version}", package], timeout=20)
    return r.stdout.strip() if r.ok else ""


def cpu_count(env: Environment) -> int:
    """CPUs the environment offers (a guest's vCPUs, a container's cpuset): what `0` means in
    a thread or process count, so that one catalogue entry fits every machine."""
    r = env.exec(["nproc"], timeout=20)
    try:
        return max(int(r.stdout.strip()), 1)
    except ValueError:
        return 1
