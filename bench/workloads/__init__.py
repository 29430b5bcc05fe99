"""Workload modules, discovered by their `tool` name. A duplicate name is an error."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from typing import Any

from .base import CellContext, Facts, Params, RawOutput, Workload


def _discover() -> dict[str, Workload]:
    found: dict[str, Workload] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Workload) and cls is not Workload and cls.__module__ == module.__name__:
                if cls.tool in found:
                    raise RuntimeError(f"two workload modules claim the tool name {cls.tool!r}")
                found[cls.tool] = cls()
    return found


TOOLS: dict[str, Workload] = _discover()


def packages() -> tuple[str, ...]:
    """The Debian packages every tool needs in an environment: what the workload image holds
    (with what every image needs besides, image.Recipe)."""
    return tuple(sorted({p for tool in TOOLS.values() for p in tool.packages}))


def facts_of(tool: str, recorded: dict[str, Any] | None = None) -> Facts:
    """A workload's facts as its run recorded them (run.json's workloads.*.facts). A run made
    before bench recorded them takes its tool's as they stand now, and a tool bench no longer
    has the defaults (Facts()): the one place where such runs are read."""
    if recorded:
        return Facts.from_json(recorded)
    return TOOLS[tool].facts() if tool in TOOLS else Facts()


__all__ = ["CellContext", "Facts", "Params", "RawOutput", "Workload", "TOOLS", "facts_of", "packages"]
