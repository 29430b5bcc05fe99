"""Errors a user can act on. The CLI prints them as one line and exits with status 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from .text import shown


class BenchError(Exception):
    """A problem with the input or the machine, stated so that the user can fix it."""


class ConfigError(BenchError):
    """A suite, workload or environment definition is wrong; says which file and key."""


class ToolError(Exception):
    """A tool ran but its output says it failed or cannot be parsed. Recorded, not fatal."""


def unknown(kind: str, name: str, choices: Iterable[str], where: str = "") -> BenchError:
    """'unknown suite 'qick' (did you mean 'quick'?); known: ...' — the nearest valid name first."""
    choices = sorted(choices)
    near = difflib.get_close_matches(name, choices, n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    known = ", ".join(choices) if choices else "none"
    place = f" in {where}" if where else ""
    name = shown(name)   # never the whole of a bad input, nor a newline of it
    return ConfigError(f"unknown {kind} '{name}'{place}{hint}; known: {known}")
