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


def finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _missing(v: Any) -> bool:
    return isinstance(v, bool) or not finite(v)


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


# A change beyond this (percent, in the worse or the better direction) reads as a factor:
# "2.3× slower", not "−132 %" (a gain of 132 %) or "+69 %" (a throughput 3.2 times lower).
FACTOR_BEYOND = 50.0


def times(p: float) -> str:
    """A performance ratio as a factor of slowdown or speed-up: 0.31 -> 3.2×, 2.3 -> 2.3×."""
    if _missing(p) or p <= 0:
        return "–"
    return f"{num(max(p, 1 / p), 2)}×"


def change(r: dict[str, Any], interval: bool = True) -> str:
    """A cell's change against native as a person reads it: "3.2× slower (95 % CI 1.7× to 6.2×)"
    beyond ±FACTOR_BEYOND %, "12 % slower (95 % CI 5.1 % to 19 %)" within it; an interval whose
    ends go both ways says so ("95 % CI 12 % slower to 48 % faster"). The performance ratio
    comes from the ratio to native and the metric's direction (a latency's inverted)."""
    p = perf_interval(r)[0]
    if _missing(p):
        return "–"
    text = _size(p, r["overhead_pct"], abs(r["overhead_pct"]) > FACTOR_BEYOND)
    ends = interval_words(r)
    return text + (f" (95 % CI {ends})" if interval and ends else "")


def overhead_words(overhead: Any, better: str) -> str:
    """An overhead alone (percent, + worse; the study's, say) in change()'s words."""
    if _missing(overhead):
        return "–"
    ratio = 1 - overhead / 100 if better == "higher" else 1 + overhead / 100
    if ratio <= 0:
        return pct(overhead)
    p = ratio if better == "higher" else 1 / ratio
    return _size(p, overhead, abs(overhead) > FACTOR_BEYOND)


def interval_words(r: dict[str, Any]) -> str:
    """The 95 % interval of change(r), in its words: "1.7× to 6.2×", "5.1 % to 19 %", or
    "12 % slower to 48 % faster" when its ends go both ways; "" when it has none."""
    p, low, high = perf_interval(r)
    if _missing(p) or _missing(low) or _missing(high):
        return ""
    as_factor = abs(r["overhead_pct"]) > FACTOR_BEYOND
    # performance's low end is the worst case: the overhead's high end (+ worse), and back
    ends = [(low, r["overhead_high"]), (high, r["overhead_low"])]
    if (low < 1) == (high < 1):   # both ends on one side: the clause's direction says it
        a, b = sorted(ends, key=lambda e: abs(math.log(e[0])))
        return f"{_size(a[0], a[1], as_factor, word=False)} to {_size(b[0], b[1], as_factor, word=False)}"
    return f"{_size(low, r['overhead_high'], as_factor)} to {_size(high, r['overhead_low'], as_factor)}"


def _size(p: float, overhead: float, as_factor: bool, word: bool = True) -> str:
    """One performance ratio (with its overhead in percent) as "3.2× slower" or "12 % faster"."""
    direction = (" slower" if p < 1 else " faster") if word else ""
    if as_factor:
        return f"{times(p)}{direction}"
    if pct(abs(overhead)) == "0 %":
        return "no change" if word else "0 %"
    return f"{pct(abs(overhead), signed=False)}{direction}"


def perf_interval(r: dict[str, Any]) -> tuple[float, float, float]:
    """(performance, low, high) relative to native, up is better: the ratio for a
    higher-is-better metric, its inverse for a lower-is-better one."""
    def ok(v):
        return not _missing(v) and v > 0
    ratio, low, high = r.get("ratio"), r.get("ratio_low"), r.get("ratio_high")
    if r.get("better") == "higher":
        return (ratio if ok(ratio) else math.nan, low if ok(low) else math.nan, high if ok(high) else math.nan)
    return (1 / ratio if ok(ratio) else math.nan, 1 / high if ok(high) else math.nan,
            1 / low if ok(low) else math.nan)
