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


# run.json's keys that hold a run's plan (Plan.to_manifest() writes them, Plan.from_manifest()
# reads them); the others are its course and what it observed.
PLAN_KEYS = (
    "run_id", "suite", "profile", "repetitions", "order_seed", "workloads", "workload_order",
    "environments", "environment_order", "skipped_environments", "only", "scratch", "allow_tcg",
    "target_ci", "max_reps", "pass_env", "allow_mismatch", "client",
)

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
    """run.json: the plan a run made before anything was provisioned, as `Plan.to_manifest()`
    writes it (bench/plan.py reads it back: `--resume` finishes a run with its own plan, not
    with today's catalogue), and its course: status, pid, and what it observed since (metadata,
    execution contexts, parity, times). The report, `bench compare` and `bench export` read the
    same file. Keys this bench does not know (a key an older or newer bench of the same format
    wrote) are kept in `observed`, written back as they were."""

    plan: dict[str, Any]          # the keys of PLAN_KEYS
    status: str = "running"       # running, complete, failed, interrupted
    pid: int | None = None        # with status "running": tells a live run from a killed one
    observed: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def environments(self) -> dict[str, dict[str, Any]]:
        """Each environment's entry of the plan, to which the run adds what it saw of it."""
        return self.plan["environments"]

    def to_json(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, **self.observed, **self.plan, "status": self.status,
                "pid": self.pid}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "RunManifest":
        """The manifest of run.json's object. ValueError names a key of its course (status,
        pid) of the wrong type; the plan's keys are Plan.from_manifest's to check."""
        wrong = [k for k, t in (("status", str), ("pid", (int, type(None))))
                 if k in doc and (not isinstance(doc[k], t) or isinstance(doc[k], bool))]
        if wrong:
            raise ValueError(", ".join(wrong))
        course = ("status", "pid", "format_version")
        return cls({k: doc[k] for k in PLAN_KEYS if k in doc}, doc.get("status", "running"), doc.get("pid"),
                   {k: v for k, v in doc.items() if k not in PLAN_KEYS and k not in course})
