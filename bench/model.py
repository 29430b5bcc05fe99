"""The few data types everything else shares: Sample, Failure, RunManifest (run.json) and its version.

A Sample is one tidy row: one metric of one repetition of one workload in one environment.
Everything a report or a notebook needs to group by is a field of the row, so results from
many runs concatenate without joins.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time
import typing
from typing import Any

# Bumped when a field of Sample, Failure or run.json changes meaning or one is added that an
# older bench would silently drop; store.load() reads older versions and refuses newer ones.
# 2: Sample.parity_ok, run.json's execution_context and parity (version 1 samples: None).
# 3: timestamps as ISO 8601 text with their UTC offset (before: seconds since the epoch), so a
#    sample's time reads the same in jq, R or a spreadsheet as in bench.load(); run.json 0644;
#    each sample line names its repetition's batch and the batch's size (store.append_samples).
FORMAT_VERSION = 3

# Names that are columns of every sample; a workload parameter may not take one of them,
# or it would overwrite a column when bench.load() flattens parameters into columns.
SAMPLE_FIELDS = (
    "run_id", "environment", "env_kind", "workload", "tool", "metric", "unit", "value",
    "better", "repetition", "timestamp", "parity_ok",
)

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


# The failures `--resume --retry-failed` measures again: not the tool's own, but what happened to it.
RETRIED_CAUSES = ("backend", "paused")


def is_difference(metric: str) -> bool:
    """A metric that is the difference of two readings (named `..._drop...`: MemAvailable before
    and after instances start): the one kind of value that may be negative."""
    return "_drop" in metric


def valid_name(name: str) -> bool:
    """Names of suites, workloads, environments and run ids: also safe as path components."""
    return bool(_NAME.fullmatch(name)) and len(name) <= 64   # fullmatch: `$` matches before a final newline


@dataclasses.dataclass(frozen=True)
class Measurement:
    """What a parser returns: a metric of one tool run, before the runner says where it ran."""

    metric: str
    value: float
    unit: str
    better: str = "higher"  # "higher" or "lower": which direction is an improvement
    # Parameters of this point of a sweep, when one repetition measures several (Redis at 1, 10
    # and 50 clients): they override the workload's own in the sample, so `clients` is a column.
    params: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.better not in ("higher", "lower"):
            raise ValueError(f"better must be 'higher' or 'lower', not {self.better!r}")


@dataclasses.dataclass(frozen=True)
class Sample:
    run_id: str
    environment: str      # the named variant, e.g. "host", "docker-nat"
    env_kind: str         # host | docker | libvirt
    workload: str         # the catalogue name, e.g. "fio-randread-4k"
    tool: str             # the program that measured it, e.g. "fio"
    metric: str
    unit: str
    value: float
    better: str
    repetition: int       # 1-based; warm-ups are never stored as samples
    timestamp: float = dataclasses.field(default_factory=time.time)
    params: dict[str, Any] = dataclasses.field(default_factory=dict)   # the workload's
    variant: dict[str, Any] = dataclasses.field(default_factory=dict)  # the environment's, as it ran
    # False: the environment's execution context differed from native's in something that decides
    # a result and that its variant does not explain (run with --allow-mismatch; see parity.py).
    # None: not checked (a run made before bench checked parity).
    parity_ok: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "timestamp": iso_time(self.timestamp)}

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> "Sample":
        fields = {f.name: row[f.name] for f in dataclasses.fields(cls) if f.name in row}
        if "timestamp" in fields:
            fields["timestamp"] = epoch_time(fields["timestamp"])
        return cls(**fields)


@dataclasses.dataclass(frozen=True)
class Failure:
    """A repetition that produced no samples, and why: kept beside the samples, never dropped."""

    run_id: str
    environment: str
    workload: str
    repetition: int       # 0 for a warm-up or for a cell that could not start
    reason: str           # one line: "exit status 1", "timed out after 60 s", "unparsable output: ..."
    stderr: str = ""      # the tail of the tool's stderr
    raw: str = ""         # path of the raw output under the run folder, if any was kept
    timestamp: float = dataclasses.field(default_factory=time.time)
    # "tool": the tool failed or its output did not parse; "backend": the environment did (a
    # daemon gone, a container removed, a guest lost); "paused": the tool was stopped mid-run
    # (SIGSTOP), so its numbers measure the pause. `--resume --retry-failed` re-runs the last two.
    cause: str = "tool"

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "timestamp": iso_time(self.timestamp)}


def iso_time(epoch: float) -> str:
    """A time as the files hold it (format 3): ISO 8601 in UTC to the microsecond, with its offset."""
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat(timespec="microseconds")


def epoch_time(value: float | str) -> float:
    """A time from the files of any format: seconds since the epoch (1, 2) or ISO 8601 text (3)."""
    return dt.datetime.fromisoformat(value).timestamp() if isinstance(value, str) else float(value)


@dataclasses.dataclass
class RunManifest:
    """run.json: the plan a run made before anything was provisioned (what runs where, how
    often, in which order, with which settings) and what it observed since (metadata, execution
    contexts, parity, status). `--resume` is loading it: the run finishes with its own plan,
    not with today's catalogue. The report, `bench compare` and `bench export` read the same
    file. Keys this bench does not type (what a run observed; a key an older or newer bench of
    the same format wrote) are kept in `observed`, written back as they were."""

    # -- the plan
    run_id: str
    suite: str
    profile: str
    repetitions: int
    order_seed: int
    workloads: dict[str, dict[str, Any]]        # name -> the catalogue entry as resolved for the run
    workload_order: list[str]                   # the suite's order
    environments: dict[str, dict[str, Any]]     # name -> kind, variant, dimension, ...; then what was seen
    environment_order: list[str]                # the user's order, native first
    skipped_environments: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> why
    only: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # workload -> its environments
    # -- the settings it ran with, which a resumed run keeps
    scratch: str = "/var/tmp"
    allow_tcg: bool = False
    target_ci: float | None = None
    max_reps: int | None = None
    pass_env: dict[str, str] = dataclasses.field(default_factory=dict)
    allow_mismatch: bool = False
    client: dict[str, Any] = dataclasses.field(default_factory=lambda: {"kind": "host"})
    # -- its course
    status: str = "running"       # running, complete, failed, interrupted
    pid: int | None = None        # with status "running": tells a live run from a killed one
    observed: dict[str, Any] = dataclasses.field(default_factory=dict)

    # The plan's keys a run cannot be resumed without, and the JSON types each must have.
    REQUIRED: typing.ClassVar[dict[str, type | tuple[type, ...]]] = {
        "suite": str, "profile": str, "repetitions": int, "order_seed": int, "workloads": dict,
        "workload_order": list, "environments": dict, "environment_order": list}
    OPTIONAL: typing.ClassVar[dict[str, type | tuple[type, ...]]] = {
        "skipped_environments": dict, "only": dict, "scratch": str, "allow_tcg": bool,
        "target_ci": (int, float, type(None)), "max_reps": (int, type(None)), "pass_env": dict,
        "allow_mismatch": bool, "client": dict, "status": str, "pid": (int, type(None))}

    def to_json(self) -> dict[str, Any]:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "observed"}
        return {"format_version": FORMAT_VERSION, **self.observed, **fields}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "RunManifest":
        """The manifest of run.json's object. ValueError names every plan key that is missing or
        of the wrong type (a run.json edited or damaged by hand)."""
        wrong = [k for k, t in cls.REQUIRED.items()
                 if k not in doc or isinstance(doc[k], bool) and t is int or not isinstance(doc[k], t)]
        wrong += [k for k, t in cls.OPTIONAL.items()
                  if k in doc and (not isinstance(doc[k], t) or isinstance(doc[k], bool) and t is not bool)]
        if wrong:
            raise ValueError(", ".join(wrong))
        typed = {f.name for f in dataclasses.fields(cls)} - {"observed"}
        return cls(run_id=str(doc.get("run_id", "")), **{k: doc[k] for k in typed - {"run_id"} if k in doc},
                   observed={k: v for k, v in doc.items() if k not in typed and k != "format_version"})
