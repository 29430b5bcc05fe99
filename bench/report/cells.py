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
from .verdict import cell_id

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


def table_cell(c: dict[str, Any]) -> None:
    """A workload table's cell (mean ± SD over repetitions): its SD in words, if it has one, and
    its verdict's view when it was compared with native."""
    c["sd_words"] = numbers.spread(c["sd"], c.get("mean")) if numbers.finite(c.get("sd")) else None
    c["compared"] = isinstance(c.get("verdict"), str)


def summary_rows(wl: dict[str, Any], others: list[str]) -> list[dict[str, Any]]:
    """The executive summary's rows of a workload: one per sweep point (in the points' sorted
    order), each with its cell per environment other than native (None where it has none), the
    cell's anchor (the first screen links to it) and the study's change in words."""
    by_point: dict[Any, dict[str, dict[str, Any]]] = {}
    for r in wl["summary"]:
        by_point.setdefault(r["point"], {}).setdefault(r["environment"], r)   # the first, as listed
        if r.get("study_overhead") is not None:
            r["study_words"] = numbers.overhead_words(r["study_overhead"], r["better"])
    return [{"point": point,
             "cells": [(e, envs[e], cell_id(e, wl["name"], wl["headline"], point)) if e in envs else (e, None, None)
                       for e in others]}
            for point, envs in sorted(by_point.items(), key=lambda kv: _order(kv[0]))]


def _order(point: Any) -> Any:
    """The order Jinja's groupby gave the points: case-insensitive."""
    return point.lower() if isinstance(point, str) else point


def prepare(workloads: list[dict[str, Any]], variants: list[dict[str, Any]], band: float,
            envs: list[str], baseline: str | None) -> None:
    """Every row the template prints a verdict for gets its view: the workloads' table cells and
    summary rows, the variants' rows; the summary's rows are laid out per environment."""
    others = [e for e in envs if e != baseline]
    for wl in workloads:
        for row in wl["table"]:
            for c in row["cells"].values():
                table_cell(c)
                if c["compared"]:
                    c["view"] = view(c, band)
        for r in wl["summary"]:
            r["view"] = view(r, band)
        wl["summary_rows"] = summary_rows(wl, others)
    for d in variants or []:
        for r in d.get("rows") or []:
            r["view"] = view(r, band)
