"""The report's first screen: what each environment costs against native, in words.

Every sentence is made from the summary's own cells (bench.stats.summarize), one claim per
cell class, each backed by the ratio's 95 % interval:
- within: the interval lies within ±BAND % (or the wider bound it has): "CPU within ±5 % of native";
- worse / better: significant and beyond BAND %: named with its change and interval;
- not resolved: an interval too wide to say anything (bench.stats.resolved): named with the
  coefficients of variation that made it so and about how many repetitions would resolve ±5 %.
"""

from __future__ import annotations

import math
from typing import Any

from .numbers import pct

BAND = 5.0   # percent: a change within this is what the study calls "negligible"
# Besides each workload's headline metric, the ones that answer a question of their own: the
# study's memory results (STREAM, RandomAccess) are hpcc's other metrics.
EXTRA_METRICS = {"hpcc": ("stream_triad", "randomaccess_gups_single")}
MAX_POINTS = 3   # sweep points of one metric on the first screen (the lowest, middle, highest)
WORDS_FOR = {"sysbench": "CPU", "xz": "CPU", "fio": "disk", "netperf": "network",
             "redis": "applications", "mariadb": "applications", "webapp": "applications"}


def resource(tool: str, metric: str) -> str:
    if tool == "hpcc":
        return "memory" if metric.startswith(("stream", "randomaccess")) else "CPU"
    return WORDS_FOR.get(tool, tool)


def overview_cells(workloads: list[dict[str, Any]], records: list[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """The cells the first screen speaks of, in the report's workload order: per workload its
    headline (at up to MAX_POINTS sweep points) and its EXTRA_METRICS."""
    out = []
    for w in workloads:
        if w["name"] == "provision":   # start-up time, measured once: no interval to speak of
            continue
        metrics = [w["headline"], *EXTRA_METRICS.get(w["tool"], ())]
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
                            "resource": resource(w["tool"], metric),
                            "by_env": {r["environment"]: r for r in cells if r["point"] == point}})
    return out


def classify(r: dict[str, Any]) -> str:
    if not r.get("resolved", True) or not _finite(r.get("overhead_low")) or not _finite(r.get("overhead_high")):
        return "unresolved"
    if r.get("significant") and r["overhead_pct"] > BAND:
        return "worse"
    if r.get("significant") and r["overhead_pct"] < -BAND:
        return "better"
    return "within"


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _bound(r: dict[str, Any]) -> float:
    """The half-width of the band around native the interval lies in, rounded up to a whole %."""
    return max(BAND, math.ceil(max(abs(r["overhead_low"]), abs(r["overhead_high"]))))


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _interval(r: dict[str, Any]) -> str:
    return f"95 % CI {pct(r['overhead_low'])} to {pct(r['overhead_high'])}"


def _gain_interval(r: dict[str, Any]) -> str:
    """The interval of a gain in the gain's own words: an overhead of -87 % to -2.1 % is
    "95 % CI 2.1 % to 87 % better" (one sign convention: the clause says which way)."""
    return f"95 % CI {pct(-r['overhead_high'], signed=False)} to {pct(-r['overhead_low'], signed=False)}"


def _bare_interval(r: dict[str, Any]) -> str:
    return f"{pct(r['overhead_low'])} to {pct(r['overhead_high'])}"


def _points(points: list[str]) -> str:
    """clients=1, clients=10, clients=50 -> clients=1, 10 and 50 (one parameter swept)."""
    keys = {p.split("=", 1)[0] for p in points if "=" in p}
    if len(keys) == 1 and all("," not in p for p in points):
        key = keys.pop()
        return f"{key}={_join([p.split('=', 1)[1] for p in points])}"
    return _join(points)


def _unresolved(label: str, r: dict[str, Any]) -> str:
    n = r.get("resolve_n")
    n = int(n) if _finite(n) else None
    need = f"about {n} repetitions would resolve ±5 %" if n else "more than 1000 repetitions would be needed for ±5 %"
    cov, native_cov = r.get("cov"), r.get("native_cov")
    spread = (f"CoV {pct(cov * 100, signed=False)} here, {pct(native_cov * 100, signed=False)} native"
              if _finite(cov) and _finite(native_cov) else "spread unknown")
    return f"{label} not resolved ({spread} at n = {r['n']}; {need})"


def sentence(env: str, cells: list[dict[str, Any]], implausible_tools: dict[str, str]) -> dict[str, Any]:
    """One environment's verdict: its parts in words, and the counts of each class."""
    mine = [(c, c["by_env"][env]) for c in cells if env in c["by_env"]]
    classes = {id(r): classify(r) for _, r in mine}
    parts: list[str] = []
    # Resources whose every cell is within the band: said once, with the widest bound.
    by_resource: dict[str, list[dict[str, Any]]] = {}
    for c, r in mine:
        by_resource.setdefault(c["resource"], []).append(r)
    whole = {res: rs for res, rs in by_resource.items() if all(classes[id(r)] == "within" for r in rs)}
    bands: dict[float, list[str]] = {}
    for res, rs in whole.items():
        bands.setdefault(max(_bound(r) for r in rs), []).append(res)
    for bound, names in sorted(bands.items()):
        parts.append(f"{_join(names)} within ±{bound:g} % of native")
    # The points of one sweep in one class make one clause: "redis costs +44 % (95 % CI ...) at
    # clients=1, +62 % (...) at clients=10", not a clause per point.
    runs: list[tuple[str, str, list[tuple[dict[str, Any], dict[str, Any]]]]] = []
    for c, r in mine:
        kind = classes[id(r)]
        if kind == "unresolved" or (kind == "within" and c["resource"] in whole):
            continue
        base = c["label"][: -len(f" @ {c['point']}")] if c["point"] else c["label"]
        if runs and runs[-1][0] == base and runs[-1][1] == kind and c["point"]:
            runs[-1][2].append((c, r))
        else:
            runs.append((base, kind, [(c, r)]))
    for base, kind, members in runs:
        points = [c["point"] for c, _ in members]
        swept = len(members) > 1
        if kind == "within":
            where = f" at {_points(points)}" if swept else (f" @ {points[0]}" if points[0] else "")
            parts.append(f"{base}{where} within ±{max(_bound(r) for _, r in members):g} %")
        elif kind == "worse":
            each = [f"{pct(r['overhead_pct'])} ({_interval(r) if i == 0 else _bare_interval(r)})"
                    + (f" at {c['point']}" if swept else "") for i, (c, r) in enumerate(members)]
            parts.append(f"{base}{'' if swept or not points[0] else ' @ ' + points[0]} costs {', '.join(each)}")
        else:
            for c, r in members:
                odd = implausible_tools.get(c["tool"], "")   # what such a win means instead
                parts.append(f"{c['label']} {pct(-r['overhead_pct'], signed=False)} better than native "
                             f"({_gain_interval(r)})" + (f"; {odd}" if odd else ""))
    # Not resolved: named together, with the widest need; each cell's own spread is in the Summary.
    open_cells = [(c, r) for c, r in mine if classes[id(r)] == "unresolved"]
    unresolved = []
    if len(open_cells) == 1:
        unresolved = [_unresolved(open_cells[0][0]["label"], open_cells[0][1])]
    elif open_cells:
        needs = [int(r["resolve_n"]) for _, r in open_cells if _finite(r.get("resolve_n"))]
        unresolved = [f"not resolved: {', '.join(c['label'] for c, _ in open_cells)} (repetitions too spread at "
                      f"n = {open_cells[0][1]['n']}; {'about ' + str(min(needs)) + '-' + str(max(needs)) if needs else 'more than 1000'}"
                      " repetitions would resolve ±5 %; each cell's spread is in the summary table)"]
    counts = {k: sum(1 for v in classes.values() if v == k) for k in ("within", "worse", "better", "unresolved")}
    ns = sorted({(r["n"], r.get("native_n", r["n"])) for _, r in mine})
    return {"environment": env, "parts": parts, "unresolved": unresolved, "counts": counts,
            "n": ", ".join(f"{a} vs {b}" if a != b else f"{a} each" for a, b in ns)}


def not_measured(skipped: dict[str, str], envs: list[str], kinds: dict[str, str], emulated: set[str]) -> list[dict[str, Any]]:
    """Environments that were not run, grouped by their reason (four KVM variants share one)."""
    groups: dict[str, list[str]] = {}
    for name, why in skipped.items():
        groups.setdefault(why, []).append(name)
    out = [{"names": names, "why": why, "headline": False} for why, names in groups.items()]
    measured_vm = [e for e in envs if kinds.get(e) == "libvirt" and e not in emulated]
    if not measured_vm:
        out.insert(0, {"names": [], "why": "No virtual machine was measured under KVM"
                       + (f" ({', '.join(sorted(e for e in envs if e in emulated))} ran emulated under TCG, "
                          "which says nothing of KVM's cost)" if emulated else "")
                       + ": the containers-against-VMs question is not answered by this report.", "headline": True})
    return out
