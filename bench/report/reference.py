"""The IBM 2014 study's published numbers (workloads/reference/ibm-2014.yaml) as a reference column."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

DEFAULT = Path(__file__).resolve().parents[2] / "workloads" / "reference" / "ibm-2014.yaml"
_BY_KIND = {"host": "native", "docker": "docker", "libvirt": "kvm"}


@dataclasses.dataclass
class Reference:
    source: str
    labels: dict[str, str]             # study configuration -> its label ("docker-nat" -> "Docker NAT")
    env_config: dict[str, str]         # our environment name -> study configuration
    results: list[dict[str, Any]]

    def config_for(self, environment: str, env_kind: str) -> str | None:
        return self.env_config.get(environment) or _BY_KIND.get(env_kind)

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
        r = values[config] / values["native"]
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
        data = yaml.safe_load(path.read_text())
        labels = {k: v["label"] for k, v in data["configurations"].items()}
        env_config = {e: k for k, v in data["configurations"].items() for e in v.get("environments", [])}
        return Reference(data["source"], labels, env_config, list(data["results"]))
    except (yaml.YAMLError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: malformed reference data: {e}") from None
