"""The words of a cell's verdict, prepared for the template: what it prints, decided here, so
that the template holds no logic per cell (a lab's report has thousands of cells).

A row set against a reference (native, or a variant's baseline) gets `view`: None when a side
has a single repetition (no interval), else its verdict, its change in words, whether every
repetition lies apart (said only when that, not the interval, decided the direction), the
interval in words and, for an unresolved cell, about how many repetitions would resolve ±5 %.
"""

from __future__ import annotations

import math
from typing import Any

from . import numbers

VERDICTS = ("cost", "gain", "equivalent", "unresolved")


def view(r: dict[str, Any], band: float) -> dict[str, Any] | None:
    if r["n"] < 2 or r.get("native_n", 2) < 2 or r.get("n_baseline", 2) < 2:
        return None
    v = r.get("verdict") if r.get("verdict") in VERDICTS else "unresolved"
    decided = v in ("cost", "gain")
    beyond = r.get("ratio_high", math.nan) < 1 / (1 + band) or r.get("ratio_low", math.nan) > 1 + band
    resolve = r.get("resolve_n")
    return {"verdict": v, "decided": decided, "change": numbers.change(r, False),
            "implausible": v == "gain" and bool(r.get("implausible")),
            "apart": bool(r.get("apart")) and decided and not beyond,
            "interval": numbers.interval_words(r) or "unbounded",
            "resolve_n": int(resolve) if v == "unresolved" and isinstance(resolve, (int, float))
            and math.isfinite(resolve) else None}


def prepare(workloads: list[dict[str, Any]], variants: list[dict[str, Any]], band: float) -> None:
    """Every row the template prints a verdict for gets its view: the workloads' table cells and
    summary rows, the variants' rows."""
    for wl in workloads:
        for row in wl["table"]:
            for c in row["cells"].values():
                if isinstance(c.get("verdict"), str):
                    c["view"] = view(c, band)
        for r in wl["summary"]:
            r["view"] = view(r, band)
    for d in variants or []:
        for r in d.get("rows") or []:
            r["view"] = view(r, band)
