"""The report's first screen: what each environment costs against native, as a matrix and in one sentence.

Every cell's class is the summary's own `verdict` (bench.stats.verdict): cost, gain, equivalent
or unresolved, from the ratio's 95 % interval against the ±5 % band. The matrix, the bottom
line, the conclusions (.conclusions), the summary table and the overview figure all read that
one column, so no two of them can disagree about a cell.

The matrix is environment × resource (each workload's facts as its run recorded them: CPU,
memory, disk, network latency, network throughput, applications). A resource's verdict is its
worst resolved cell's: a cost anywhere is a cost, with the largest one's size and a link to it;
equivalent only when every cell is; unresolved when nothing beyond the band was resolved and some
cell straddles an edge of it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..workloads.base import RESOURCES
from .numbers import change, perf_interval, times

MAX_POINTS = 3   # sweep points of one metric on the first screen (the lowest, middle, highest)
CLASSES = ("cost", "gain", "equivalent", "unresolved")


def cell_id(env: str, workload: str, metric: str, point: str) -> str:
    """The anchor of a cell in the summary table, which the matrix and the conclusions link to."""
    return "c-" + re.sub(r"[^A-Za-z0-9_-]+", "-", f"{env}--{workload}--{metric}--{point}").strip("-")


def overview_cells(workloads: list[dict[str, Any]], records: list[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """The cells the first screen speaks of, in the report's workload order: per workload its
    headline (at up to MAX_POINTS sweep points) and its facts' extra metrics."""
    out = []
    for w in workloads:
        if w["name"] == "provision":   # start-up time, measured once: no interval to speak of
            continue
        metrics = [w["headline"], *w["facts"].extra_metrics]
        for metric in metrics:
            cells = [r for r in records if r["workload"] == w["name"] and r["metric"] == metric
                     and r["environment"] != baseline and "ratio" in r]
            points = list(dict.fromkeys(r["point"] for r in cells))
            if len(points) > MAX_POINTS:
                points = [points[0], points[len(points) // 2], points[-1]]
            for point in points:
                label = w["name"] if metric == w["headline"] else f"{w['name']} {metric}"
                out.append({"label": label + (f" @ {point}" if point else ""), "workload": w["name"],
                            "metric": metric, "point": point, "tool": w["tool"],
                            "resource": w["facts"].resource_of(metric),
                            "by_env": {r["environment"]: r for r in cells if r["point"] == point}})
    return out


def extras(workloads: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Whose extra metrics the first screen shows, and what they measure: [(tool, "memory")],
    for the words beside the matrix and the overview ("and <tool>'s memory results")."""
    said: dict[str, list[str]] = {}
    for w in workloads:
        if w["facts"].extra_metrics:
            said.setdefault(w["tool"], list(dict.fromkeys(w["facts"].resource_of(m) for m in w["facts"].extra_metrics)))
    return [(tool, _join(resources)) for tool, resources in said.items()]


def classify(r: dict[str, Any]) -> str:
    """The cell's verdict as bench.stats gave it (a cell of one repetition has none: unresolved)."""
    v = r.get("verdict")
    return v if v in CLASSES else "unresolved"


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _slowdown(r: dict[str, Any]) -> float:
    """How far the cell is from native in the worse direction, as a log factor (for ranking)."""
    p = perf_interval(r)[0]
    return -math.log(p) if _finite(p) and p > 0 else 0.0


def _span(rs: list[dict[str, Any]]) -> str:
    """The range the unresolved cells' intervals cover, as performance relative to native."""
    lows = [perf_interval(r)[1] for r in rs]
    highs = [perf_interval(r)[2] for r in rs]
    lows, highs = [v for v in lows if _finite(v)], [v for v in highs if _finite(v)]
    if not lows or not highs:
        return "no interval"
    return f"×{min(lows):.2g} to ×{max(highs):.2g} of native"


def matrix_cell(env: str, mine: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """One environment's verdict on one resource, from its cells there."""
    by: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {k: [] for k in CLASSES}
    for c, r in mine:
        by[classify(r)].append((c, r))
    counts = {k: len(v) for k, v in by.items()}
    total = len(mine)
    implausible = ""
    if by["cost"]:
        c, r = max(by["cost"], key=lambda cr: _slowdown(cr[1]))
        verdict, size = "cost", change(r, interval=False)
    elif by["gain"]:
        c, r = min(by["gain"], key=lambda cr: _slowdown(cr[1]))
        verdict, size = "gain", change(r, interval=False)
        # a gain no environment can have on this work (its facts' implausible_win) is named for what it is
        implausible = next((r2.get("implausible") for _, r2 in by["gain"] if r2.get("implausible")), "")
    elif by["unresolved"]:
        c, r = by["unresolved"][0]
        verdict, size = "unresolved", _span([r for _, r in by["unresolved"]])
    else:
        c, r = mine[0]
        verdict, size = "equivalent", "within ±5 %"
    parts = [f"{counts[k]} {k}" for k in CLASSES if counts[k]]
    # what the matrix prints: the size in large type, then what decided it
    decided = verdict in ("cost", "gain")
    shown = size if decided else "≈ native" if verdict == "equivalent" else "unresolved"
    reason = f"{verdict}, worst: {c['label']}" if decided else size
    return {"verdict": verdict, "size": size, "shown": shown, "reason": reason, "label": c["label"],
            "href": "#" + cell_id(env, c["workload"], c["metric"], c["point"]),
            "counts": counts, "total": total, "tally": ", ".join(parts), "environment": env,
            "slowdown": _slowdown(r), "implausible": implausible or ""}


def matrix(cells: list[dict[str, Any]], envs: list[str]) -> dict[str, Any]:
    """environment × resource: each a matrix_cell, or None where nothing of it was measured."""
    resources = [res for res in RESOURCES if any(c["resource"] == res for c in cells)]
    resources += list(dict.fromkeys(c["resource"] for c in cells if c["resource"] not in resources))
    rows = []
    for env in envs:
        row = {}
        for res in resources:
            mine = [(c, c["by_env"][env]) for c in cells if c["resource"] == res and env in c["by_env"]]
            row[res] = matrix_cell(env, mine) if mine else None
        rows.append({"environment": env, "cells": row})
    return {"resources": resources, "rows": rows}


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def bottom_line(grid: dict[str, Any], notes: dict[str, str]) -> str:
    """One sentence: which environments cost what, where, and which match native.
    `notes`: a few words to say beside an environment's name (docker-proxy on loopback)."""
    costly, matching, unsure = [], [], []
    for row in grid["rows"]:
        env, cells = row["environment"], [c for c in row["cells"].values() if c]
        if not cells:
            continue
        costs = [(res, c) for res, c in row["cells"].items() if c and c["verdict"] == "cost"]
        name = env + (f" ({notes[env]})" if env in notes else "")
        for res, c in row["cells"].items():   # a win that cannot be one is said first, for what it is
            if c and c.get("implausible"):
                costly.append(f"{env} beats native on {res} ({c['size']}, {c['label']}): {c['implausible']}")
        if costs:
            worst = max(costs, key=lambda rc: rc[1]["slowdown"])
            costly.append(f"{name} costs on {_join([res for res, _ in costs])} (worst {worst[1]['size']})")
        elif all(c["verdict"] == "equivalent" for c in cells):
            matching.append(name)
        else:
            unsure.append(name)
    clauses = costly[:]
    if matching:
        clauses.append(f"{_join(matching)} {'match' if len(matching) > 1 else 'matches'} native within ±5 % on every resource")
    if unsure:
        clauses.append(f"{_join(unsure)} {'show' if len(unsure) > 1 else 'shows'} no cost that the repetitions resolve")
    cells = [c for row in grid["rows"] for c in row["cells"].values() if c]
    total, open_ = sum(c["total"] for c in cells), sum(c["counts"]["unresolved"] for c in cells)
    if open_:   # what the sentence cannot speak of, said in it
        clauses.append(f"{open_} of {total} cells unresolved")
    return ("; ".join(clauses) + ".") if clauses else ""


def unresolved_note(env: str, cells: list[dict[str, Any]]) -> str:
    """The cells of an environment left unresolved, and about how many repetitions would resolve them."""
    open_cells = [(c, c["by_env"][env]) for c in cells if env in c["by_env"] and classify(c["by_env"][env]) == "unresolved"]
    if not open_cells:
        return ""
    needs = [int(r["resolve_n"]) for _, r in open_cells if _finite(r.get("resolve_n"))]
    need = (f"about {min(needs)}{'-' + str(max(needs)) if max(needs) != min(needs) else ''} repetitions would resolve ±5 %"
            if needs else "more than 1000 repetitions would be needed for ±5 %")
    return (f"{env}: {len(open_cells)} unresolved ({', '.join(c['label'] for c, _ in open_cells)}; "
            f"n = {open_cells[0][1]['n']}; {need})")


def not_measured(skipped: dict[str, str], envs: list[str], kinds: dict[str, str], emulated: set[str]) -> list[dict[str, Any]]:
    """Environments that were not run, grouped by their reason (four KVM variants share one).
    Only what is true of this run: an environment the reason names that did not run is not
    called "measured here", and a reason is said whole (its first sentence), never cut."""
    groups: dict[str, list[str]] = {}
    for name, why in skipped.items():
        groups.setdefault(_true_of_this_run(why, envs, emulated), []).append(name)
    out = [{"names": names, "why": why, "headline": False} for why, names in groups.items()]
    measured_vm = [e for e in envs if kinds.get(e) == "libvirt" and e not in emulated]
    if not measured_vm:
        out.insert(0, {"names": [], "why": "No virtual machine was measured under KVM"
                       + (f" ({', '.join(sorted(e for e in envs if e in emulated))} ran emulated under TCG, "
                          "which says nothing of KVM's cost)" if emulated else "")
                       + ": the containers-against-VMs question is not answered by this report.", "headline": True})
    return out


def _clauses(text: str) -> list[str]:
    """text split at its semicolons outside parentheses."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == ";" and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    return [*out, text[start:].strip()]


ENV_NAME = re.compile(r"\b(?:kvm|docker|podman|tcg|gvisor)(?:-[a-z0-9]+)*\b")


def _true_of_this_run(why: str, envs: list[str], emulated: set[str]) -> str:
    """A skip reason as this run can say it. A reason is written before the run knows what else
    ran: a clause naming other environments as what is "measured here" is dropped when none of
    them was (measured, not emulated). Reasons are said whole, never cut mid-sentence."""
    kept = []
    for clause in _clauses(why):
        named = ENV_NAME.findall(clause)
        if kept and "measure" in clause and named and not any(n in envs and n not in emulated for n in named):
            continue
        kept.append(clause)
    return "; ".join(kept).rstrip(" ;,")
