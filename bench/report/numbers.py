"""Numbers as a reader takes them: few significant digits, a spread to two, a zero as 0, µs.

A mean carries at most 4 significant digits, an SD or an interval's end 2: more would claim a
precision three repetitions do not have. Nothing here writes infinity or nan: a value that is
missing is a dash, and an interval that bounds nothing is said in words by the caller.
"""

from __future__ import annotations

import math
from typing import Any

# Units as the tools write them, as a reader reads them.
UNITS = {"us": "µs", "usec": "µs", "MiB/s": "MiB/s", "KiB/s": "KiB/s"}
# An SD below this fraction of the mean is the arithmetic's rounding, not a spread.
NEGLIGIBLE = 1e-9


def unit_label(unit: Any) -> str:
    return UNITS.get(str(unit), str(unit)) if unit is not None else ""


def _missing(v: Any) -> bool:
    return v is None or not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v)


def num(v: Any, digits: int = 4) -> str:
    """`digits` significant digits, thousands grouped, no exponent; '–' for a missing value."""
    if isinstance(v, str):
        return v
    if _missing(v):
        return "–"
    if v == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(v)))
    rounded = round(v, digits - 1 - magnitude)
    if rounded == 0:
        return "0"
    if abs(rounded) < 1e-3:   # 0.0000123: an exponent reads better than the zeros
        return f"{rounded:.{digits}g}"
    magnitude = math.floor(math.log10(abs(rounded)))   # 9.996 rounds to 10.00: one digit more
    decimals = max(0, digits - 1 - magnitude)
    return f"{rounded:,.{decimals}f}"


def spread(sd: Any, mean: Any = None) -> str:
    """An SD to 2 significant digits; 0 when it is rounding error of the mean (3.438 ± 5e-16)."""
    if _missing(sd):
        return "–"
    if sd == 0 or (not _missing(mean) and abs(sd) <= NEGLIGIBLE * abs(mean)):
        return "0"
    return num(sd, 2)


def pct(v: Any, signed: bool = True) -> str:
    """A percentage to one decimal below 100, whole from 100, 3 significant digits from 1000:
    +4.2 %, +838 %, +15,700 %."""
    if _missing(v):
        return "–"
    a = abs(v)
    if a < 0.05:
        return "0 %"
    text = num(a, 3) if a >= 1000 else f"{a:.0f}" if a >= 100 else f"{a:.1f}"
    sign = ("+" if v > 0 else "−") if signed else ("−" if v < 0 else "")
    return f"{sign}{text} %"


def pval(v: Any) -> str:
    if _missing(v):
        return "–"
    return f"{v:.2g}" if v >= 0.001 else "< 0.001"
