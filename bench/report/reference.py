"""The IBM 2014 study's numbers (workloads/reference/ibm-2014.yaml) as a reference column.

Each result names the file of the study's repository (thewmf/kvm-docker-comparison) its numbers
come from. A value is a number found in that file, or {value, origin: paper} for a number the
paper prints that its raw data does not hold: the report marks those. A result may say which of
our environments a study configuration stands for (`environments`), where it is not the usual
one: the study's KVM network numbers are a bridged vhost-net guest's, kvm-bridge's and no other.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .. import datafile
from ..datafile import shown
from ..errors import ConfigError

DEFAULT = Path(__file__).resolve().parents[2] / "workloads" / "reference" / "ibm-2014.yaml"
ORIGINS = {"raw": "the study's raw data", "paper": "paper text, not in the raw data"}


@dataclasses.dataclass
class Reference:
    source: str
    repository: str                    # where the study's raw files are (each result names its file)
    labels: dict[str, str]             # study configuration -> its label ("docker-nat" -> "Docker NAT")
    env_config: dict[str, str]         # our environment name -> study configuration
    results: list[dict[str, Any]]

    def config_for(self, environment: str, env_kind: str, result: dict[str, Any]) -> str | None:
        """The study configuration an environment of ours stands for in `result`: the result's
        own mapping first; else the environment's configuration, else its kind's, whichever
        the result has a value for. A configuration the result maps explicitly is nobody
        else's (its fio "Docker" ran on a volume: not docker-overlay's number)."""
        explicit = result.get("environments") or {}
        for config, environments in explicit.items():
            if environment in environments:
                return config
        from ..environments import KINDS

        by_kind = KINDS[env_kind].study_configuration if env_kind in KINDS else ""
        for config in (self.env_config.get(environment), by_kind):
            if config and config not in explicit and config in result["values"]:
                return config
        return None

    def for_metric(self, workload: str, metric: str, point: dict[str, Any]) -> dict[str, Any] | None:
        """The study's result for this cell: its point matches, or it is the sweep's `peak`."""
        for r in self.results:
            if r["workload"] != workload or r["metric"] != metric:
                continue
            want = r.get("point")
            if want in (None, "peak") or all(_same(point.get(k), v) for k, v in want.items()):
                return r
        return None

    def ratio(self, result: dict[str, Any], config: str | None, better: str) -> float | None:
        """The study's overhead of `config` against native, in percent (worse direction)."""
        values = result["values"]
        if config is None or config not in values or "native" not in values or config == "native":
            return None
        r = values[config]["value"] / values["native"]["value"]
        return (1 - r) * 100 if better == "higher" else (r - 1) * 100


def _same(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return a == b


def load(path: Path = DEFAULT) -> Reference | None:
    if not path.exists():
        return None
    try:
        data = datafile.read_yaml(path)
        labels = {k: v["label"] for k, v in data["configurations"].items()}
        env_config = {e: k for k, v in data["configurations"].items() for e in v.get("environments", [])}
        results = [_result(r) for r in data["results"]]
        return Reference(data["source"], data.get("repository", ""), labels, env_config, results)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ConfigError(f"{path}: malformed reference data: {shown(str(e), 120)}") from None


def _result(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry with every value as {value, origin, source}."""
    if not entry.get("source"):
        raise ValueError(f"result {entry.get('result')!r} names no source file")
    values = {}
    for config, v in entry["values"].items():
        v = v if isinstance(v, dict) else {"value": v}
        origin = v.get("origin", "raw")
        if origin not in ORIGINS:
            raise ValueError(f"result {entry['result']!r}, {config}: origin {origin!r} is not one of {sorted(ORIGINS)}")
        values[config] = {"value": float(v["value"]), "origin": origin, "source": v.get("source", entry["source"])}
    return {**entry, "values": values}
