"""Output for a person at a terminal: numbers with at most 4 significant digits and lines that fit.

A line of `bench list`, `bench compare` or the end-of-run summary fits 100 columns (fewer on a
narrower terminal): past that a terminal wraps it, and a table of wrapped lines cannot be read.
"""

from __future__ import annotations

import math
import shutil
from typing import Any

MAX_WIDTH = 100   # wider terminals still get 100: long lines are hard to read
MIN_WIDTH = 40    # below this truncation leaves nothing to read; let the terminal wrap instead
ELLIPSIS = "…"
_SUFFIXES = ("", "k", "M", "G", "T", "P")


def width() -> int:
    """The columns to fill: the terminal's (or $COLUMNS), at most MAX_WIDTH."""
    columns = shutil.get_terminal_size((MAX_WIDTH, 24)).columns
    return max(MIN_WIDTH, min(MAX_WIDTH, columns))


def fit(line: str, columns: int) -> str:
    """The line cut to `columns` characters, the cut marked with an ellipsis."""
    line = line.rstrip()
    return line if len(line) <= columns else line[:columns - 1] + ELLIPSIS


def human(value: float | int | None) -> str:
    """At most 4 significant digits, with k/M/G... from a thousand up: 49.68k, 1.23M, 0.0125.

    Never 4.968e+04: a reader compares magnitudes at a glance. Only magnitudes below 1e-4 keep
    the exponent, where a row of zeros would be harder to read than it.
    """
    if value is None or math.isnan(value):
        return "–"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    value = float(f"{float(value):.4g}")   # round first: 999,960 is 1M, not 1000k
    tier = 0
    while abs(value) >= 1000 and tier < len(_SUFFIXES) - 1:
        value /= 1000
        tier += 1
    return f"{value:.4g}{_SUFFIXES[tier]}"


def percent(value: float, signed: bool = True) -> str:
    """A change in percent, one decimal: +27.3%, +1573%, +15.73k% (at most 4 significant digits
    from a thousand up)."""
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return ("+" if value > 0 else "-") + "inf%"
    if abs(value) < 0.05:
        value = 0.0   # not "-0.0%": a change that rounds to nothing has no direction
    if abs(value) >= 10_000:
        return ("+" if signed and value > 0 else "") + human(value) + "%"
    if abs(value) >= 1000:
        return f"{value:+.0f}%" if signed else f"{value:.0f}%"
    return f"{value:+.1f}%" if signed else f"{value:.1f}%"


# How an input is quoted in an error: never whole (a key may hold a newline or a megabyte).
EXCERPT = 60                 # characters of the input an error quotes


def excerpt(value: Any, limit: int = EXCERPT) -> str:
    """repr(value), cut to `limit` characters with an ellipsis: an error never repeats a whole input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown(value: Any, limit: int = EXCERPT) -> str:
    """A name or key from the input as an error shows it: as it is when it is short printable
    text, else as its repr, cut (a key may hold a newline or a megabyte)."""
    text = str(value)
    if not text.isprintable():
        return excerpt(text, limit)
    return text if len(text) <= limit else text[: limit - 1] + "…"
