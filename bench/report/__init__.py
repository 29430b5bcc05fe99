"""The report: one self-contained HTML file from one or more run folders.

    from bench.report import render_runs
    render_runs(["results/<run-id>"], "report.html")

Statistics come from bench.stats; figures from .figures (inline SVG); the text from
templates/report.html.j2, rendered by jinja2 with autoescaping on: every string from configs,
tools and metadata is escaped.
"""

from __future__ import annotations

import datetime
import os
import re
import warnings
from pathlib import Path
from typing import Any

from .. import stats
from ..workloads import Facts, facts_of
from . import numbers
from ..errors import BenchError
from ..output import output_file
from ..store import FAILURES, effective_status, load, read_failures, read_manifest, run_folders, warn_skipped

TEMPLATES = Path(__file__).resolve().parent / "templates"
# What stats.summarize adds to a cell beside native (stats.compare, and the native side's spread).
COMPARISON_KEYS = ("ratio", "ratio_low", "ratio_high", "overhead_pct", "overhead_low", "overhead_high", "p", "p_min",
                   "significant", "basis", "apart", "verdict", "native_n", "native_cov", "resolved", "resolve_n")
# Percentiles shown in the tables; the others only in the CDF and the full statistics.
TABLE_PERCENTILES = {"p50", "p90", "p95", "p99"}
MAX_TABLE_METRICS = 12   # per workload in the bar chart: the first ones (the tool's headline first)
MAX_SWEEP_FIGURES = 4    # per workload


def _percentile_hidden(metric: str) -> bool:
    m = re.search(r"_(p\d+(?:_\d+)?)$", metric)
    return bool(m) and m.group(1) not in TABLE_PERCENTILES


def emulated_environments(df, manifests: list[dict[str, Any]]) -> set[str]:
    """Environments not measured under KVM: a sample says accel=tcg, or run.json says emulated."""
    found = set()
    if "env_accel" in df:
        found |= set(df.loc[df["env_accel"] == "tcg", "environment"].unique())
    for m in manifests:
        for name, e in (m.get("environments") or {}).items():
            meta = e.get("metadata") or {}
            if (e.get("emulated") or e.get("accel") == "tcg" or meta.get("emulated") is True
                    or meta.get("accel") == "tcg" or (e.get("variant_as_run") or {}).get("accel") == "tcg"):
                found.add(name)
    return found


def _env_order(df, manifests, baseline) -> list[str]:
    order: list[str] = [baseline] if baseline else []
    for m in manifests:
        order += m.get("environment_order", [])
    present = list(df["environment"].unique())   # unique(): in order of appearance, as dict.fromkeys
    return list(dict.fromkeys(e for e in order + present if e in present))


def _workload_order(df, manifests) -> list[str]:
    order: list[str] = []
    for m in manifests:
        order += m.get("workload_order", [])
    appearing = list(df["workload"].unique())   # a column's values one by one cost ~1 us each
    present = set(appearing)
    return list(dict.fromkeys([w for w in order if w in present] + [w for w in appearing if w != "provision"]
                              + (["provision"] if "provision" in present else [])))


class Results:
    """What every section reads: the runs, their samples and the summary, loaded once."""

    def __init__(self, paths: list[str | os.PathLike], options: stats.Options):
        from . import reference

        self.folders = run_folders(paths)
        if not self.folders:
            raise BenchError(f"no run folders in {', '.join(map(str, paths))}")
        self.options = options
        self.manifests = [read_manifest(f) for f in self.folders]
        self.reference = reference.load()   # the study's numbers (a YAML file read once)
        self.df, self.failures, self.notes = _read(self.folders)
        df, manifests = self.df, self.manifests
        self.baseline = stats.baseline_environment(df) if not df.empty else None
        self.summary = stats.summarize(df, self.baseline, options) if not df.empty else None
        self.emulated = emulated_environments(df, manifests) if not df.empty else set()
        self.envs = _env_order(df, manifests, self.baseline) if not df.empty else []
        pairs = df[["environment", "env_kind"]].drop_duplicates() if not df.empty else None
        self.kinds = dict(zip(pairs["environment"], pairs["env_kind"])) if pairs is not None else {}
        # The summary as plain dicts once (a DataFrame row per table cell costs a millisecond each).
        self.records = self.summary.to_dict("records") if self.summary is not None else []
        self.facts = _facts(manifests, df)
        # A tool whose numbers are absolute (an instance's own costs) keeps its statistics and loses
        # the comparison: no ratio, verdict or first-screen cell of it is set against native.
        for r in self.records:
            if not self.facts[r["workload"]].against_native:
                for key in COMPARISON_KEYS:
                    r.pop(key, None)


def _read(folders) -> tuple[Any, list[dict[str, Any]], list[str]]:
    """The samples, the failures (each marked when its repetition was measured later) and what
    was said while reading them, for the report's notes and the caller."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load(*folders)
        failures = []
        for folder in folders:
            rows, skipped = read_failures(folder / FAILURES)
            warn_skipped(folder / FAILURES, skipped)
            failures += [{**f, "run_id": f.get("run_id", folder.name)} for f in rows]
    notes = [str(w.message) for w in caught]
    for note in notes:  # in the report's notes, and said to the caller too
        if "unreadable record" in note:
            warnings.warn(note, stacklevel=3)
    if failures and not df.empty:  # a repetition measured again (--retry-failed) after it failed
        measured = set(zip(df["run_id"], df["environment"], df["workload"], df["repetition"]))
        for f in failures:
            f["measured_later"] = (f["run_id"], f.get("environment"), f.get("workload"), f.get("repetition")) in measured
    return df, failures, notes


def build(paths: list[str | os.PathLike], options: stats.Options = stats.Options()) -> dict[str, Any]:
    """Everything the template shows, a function per section."""
    from . import cells, instances as instance_costs, variants

    res = Results(paths, options)
    workloads = _workloads(res)
    first = _first_screen(workloads, res.records, res.baseline, res.envs, res.kinds, res.emulated, res.manifests)
    first["figures"] = _shown(first.pop("jobs"))
    costs = instance_costs.section(res.df, res.envs, res.emulated, options, res.summary) if not res.df.empty else None
    if costs:
        costs["figures"] = _shown(costs["jobs"])
    headlines = {wl["name"]: wl["headline"] for wl in workloads}
    groups = variants.build(res.df, res.manifests, [wl["name"] for wl in workloads], headlines, res.emulated, options)
    cells.prepare(workloads, groups, options.band, res.envs, res.baseline)
    return {"first": first, "instances": costs, "variants": groups, "workloads": workloads,
            **_summary_section(res), **_parity_section(res), **_runs_section(res),
            "csv": _statistics_csv(res.summary, res.manifests)}


def _summary_section(res: Results) -> dict[str, Any]:
    return {"p_floor": _p_floor(res.records, res.options), "baseline": res.baseline, "envs": res.envs,
            "emulated": sorted(res.emulated), "kinds": res.kinds, "options": res.options}


def _parity_section(res: Results) -> dict[str, Any]:
    parity = _parity(res.manifests, res.envs)
    mismatched = {e["name"] for e in parity if e["blocking"]}
    if "parity_ok" in res.df.columns:
        mismatched |= set(res.df.loc[res.df["parity_ok"].eq(False), "environment"].unique())
    return {"parity": parity, "mismatched": sorted(mismatched)}


def _runs_section(res: Results) -> dict[str, Any]:
    """The runs, the host, the environments, the failures and the notes; the study's source."""
    manifests, ref = res.manifests, res.reference
    return {
        "title": "bench report: " + ", ".join(m.get("run_id", "?") for m in manifests),
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "runs": [{**_run_info(m), "folder": str(f), "effective_status": effective_status(m, f)}
                 for f, m in zip(res.folders, manifests)],
        "host": manifests[0].get("host") or {},
        "hosts_differ": len({(m.get("host") or {}).get("hostname") for m in manifests}) > 1,
        "environments": _environments(manifests, res.envs),
        "skipped": {k: v for m in manifests for k, v in (m.get("skipped_environments") or {}).items()
                    if k not in res.envs},
        "failures": res.failures, "notes": res.notes,
        "reference_source": ref.source if ref else None,
        "reference_labels": ref.labels if ref else {},
        "reference_repository": ref.repository if ref else "",
        "n_samples": len(res.df),
    }


def _workloads(res: Results) -> list[dict[str, Any]]:
    """Each workload's section: its table, figures and summary rows, in the runs' order."""
    if res.summary is None:
        return []
    ref = res.reference
    records_of: dict[str, list[dict[str, Any]]] = {}
    for r in res.records:
        records_of.setdefault(r["workload"], []).append(r)
    rows_of = dict(iter(res.summary.groupby("workload", sort=False)))
    metrics_of = {w: list(g.unique()) for w, g in res.df.groupby("workload", sort=False)["metric"]}
    return [_workload(res, ref, w, rows_of[w], metrics_of[w], records_of.get(w, []))
            for w in _workload_order(res.df, res.manifests)]


def _workload(res: Results, ref, w: str, rows, metrics: list[str], recs: list[dict[str, Any]]) -> dict[str, Any]:
    baseline, envs, emulated, kinds = res.baseline, res.envs, res.emulated, res.kinds
    headline = metrics[0]   # the tool's order: headline first
    shown = [m for m in metrics if not _percentile_hidden(m)]
    sweep_keys = [c[len("sweep_"):] for c in rows.columns if c.startswith("sweep_") and rows[c].notna().any()]
    table = []
    for m in shown:
        points: dict[str, list[dict[str, Any]]] = {}   # a cell per sweep point, in summary order
        for r in recs:
            if r["metric"] == m:
                points.setdefault(r["point"], []).append(r)
        for point, cell_recs in points.items():
            by_env = {r["environment"]: r for r in cell_recs}
            first = cell_recs[0]
            sweep_point = {k: first.get(f"sweep_{k}") for k in sweep_keys}
            study = ref.for_metric(w, m, sweep_point) if ref else None
            if study and study.get("point") == "peak":
                study = study if _is_peak(rows, m, point, baseline) else None
            table.append({"metric": m, "point": point, "unit": first["unit"], "better": first["better"],
                          "cells": by_env, "study": _study_cells(study, envs, kinds, ref, first["better"], emulated)})
    tool, facts = rows["tool"].iloc[0], res.facts[w]
    figs = _workload_figures(w, tool, rows, shown, headline, sweep_keys, envs, baseline, emulated)
    compared = [r for r in recs if r["metric"] == headline and r["environment"] != baseline
                and "ratio" in r and numbers.finite(r.get("ratio"))]
    for r in compared:
        # Faster than the bare host on CPU or memory work is what a leaked variable or another
        # binary looks like (a false "HPL +44 % in Docker"), not a win: said so in words, on
        # the cell itself, so the first screen's matrix says it too.
        implausible = (bool(facts.implausible_win) and bool(r.get("significant"))
                       and r.get("overhead_pct", 0) < -PLAUSIBILITY_PCT)
        r["implausible"] = facts.implausible_win if implausible else ""
    summary_rows = [dict(r) for r in compared]
    for r in summary_rows:
        study = ref.for_metric(w, headline, {k: r.get(f"sweep_{k}") for k in sweep_keys}) if ref else None
        if study and study.get("point") == "peak" and not _is_peak(rows, headline, r["point"], baseline):
            study = None
        config = (ref.config_for(r["environment"], r["env_kind"], study)
                  if study and r["environment"] not in emulated else None)
        r["study_overhead"] = ref.ratio(study, config, r["better"]) if study else None
        r["study_config"] = ref.labels.get(config, config) if study and config else None
        r["study_paper_only"] = bool(study) and any(study["values"].get(c, {}).get("origin") == "paper"
                                                    for c in (config, "native"))
    return {"name": w, "tool": tool, "facts": facts, "headline": headline, "sweep_keys": sweep_keys,
            "table": table, "figures": figs, "summary": summary_rows,
            "description": _description(res.manifests, w), "params": _params(res.manifests, w),
            "setup_notes": _setup_notes(res.manifests, facts, envs)}


def _workload_figures(w, tool, rows, shown, headline, sweep_keys, envs, baseline, emulated) -> list[dict[str, Any]]:
    """A workload's figures: its metrics against native (no sweep), its latency distribution,
    each sweep's metrics in the headline's unit. Drawn from the summary's rows as dicts (each
    with its comparison, as the summary has it)."""
    cells = rows.to_dict("records")
    unit_of: dict[str, str] = {}
    for r in cells:
        unit_of.setdefault(r["metric"], r["unit"])   # a metric's unit, from its first cell
    jobs = []
    if not sweep_keys and baseline:
        table_metrics = set(shown[:MAX_TABLE_METRICS])
        bars = [r for r in cells if r["metric"] in table_metrics]
        jobs.append(("normalized_bars", (bars, envs, baseline, emulated, f"{w}: mean relative to {baseline}, "
                                                                        f"95 % interval of the ratio"),
                     f"{w}: each metric relative to {baseline}, 95 % interval of the ratio; grey band: ±5 %; pale bar: "
                      "equivalent; pale and cross-hatched: unresolved"))
    jobs.append(("latency_cdf", (cells, envs, emulated, f"{w}: completion-latency distribution ({tool} percentiles)"),
                 f"{w}: latency CDF from the percentile metrics (mean over repetitions)"))
    for key in sweep_keys:
        unit = unit_of[headline]
        for m in [m for m in shown if unit_of[m] == unit][:MAX_SWEEP_FIGURES]:
            jobs.append(("sweep", ([r for r in cells if r["metric"] == m], key, envs, baseline, emulated,
                                   f"{w}: {m} against {key}"),
                         f"{w}: {m} against {key}: each environment's mean with its 95 % CI, each its own marker and dash"))
    return _shown(jobs)


def _first_screen(workloads, records, baseline, envs, kinds, emulated, manifests) -> dict[str, Any]:
    """The review's answer: one bottom-line sentence, the matrix of environment × resource, the
    study's five conclusions tested here, the overview figure, what was not measured and why,
    and the machine's warnings. All of it from the cells' one verdict."""
    from . import conclusions, verdict

    cells = verdict.overview_cells(workloads, records, baseline) if baseline else []
    # The study's number for a cell, where it has one, to set beside it in the conclusions.
    study = {(r["environment"], wl["name"], r["metric"], r["point"]): r for wl in workloads for r in wl["summary"]
             if r.get("study_overhead") is not None}
    for c in cells:
        for e, r in c["by_env"].items():
            found = study.get((e, c["workload"], c["metric"], c["point"]))
            if found:
                r["study_overhead"], r["study_config"] = found["study_overhead"], found.get("study_config")
    others = [e for e in envs if e != baseline]
    networks, proxied = _networks(manifests, envs)
    grid = verdict.matrix(cells, others)
    notes = {**{e: PROXY_WORDS for e in proxied}, **{e: "emulated under TCG, which says nothing of KVM" for e in emulated}}
    items = [(c["label"], {e: (*stats.performance(r["ratio"], r["ratio_low"], r["ratio_high"], r["better"]),
                               verdict.classify(r))
                           for e, r in c["by_env"].items()}) for c in cells]
    jobs = []
    if items and others:
        jobs.append(("overview", (items, envs, baseline, emulated, f"Each workload against {baseline}: "
                                  "performance relative to native, 95 % interval of the ratio"),
                     f"Overview: each workload's headline metric{_and_extras(verdict.extras(workloads))} as performance relative "
                     f"to {baseline} (×1), log axis, right is better (a latency's ratio inverted); error bars: the 95 % "
                     "interval of the ratio; grey band: ±5 %, equivalent; solid bar: a cost or a gain; pale: "
                     "equivalent; pale and cross-hatched: unresolved" + ("; hatched: emulated (TCG)" if emulated else "") + "."))
    skipped = {k: v for m in manifests for k, v in (m.get("skipped_environments") or {}).items() if k not in envs}
    warnings_seen: dict[str, dict[str, str]] = {}
    for m in manifests:
        for w in m.get("machine_warnings") or []:
            warnings_seen.setdefault(f"{w.get('name')}: {w.get('detail')}", w)
    return {"bottom_line": verdict.bottom_line(grid, notes), "matrix": grid, "proxied": sorted(proxied),
            "extras": verdict.extras(workloads),
            # none where nothing was set against native (a run of instance costs alone)
            "conclusions": conclusions.conclusions(cells, envs, kinds, emulated, networks, proxied, baseline)
            if baseline and cells else [],
            "unresolved": [u for u in (verdict.unresolved_note(e, cells) for e in others) if u],
            "not_measured": verdict.not_measured(skipped, envs, kinds, emulated),
            "machine_warnings": list(warnings_seen.values()),
            "machine_checked": any("machine_warnings" in m for m in manifests),
            "jobs": jobs}


def _and_extras(extras: list[tuple[str, str]]) -> str:
    words = [f"{tool}'s {resources} results" for tool, resources in extras]
    return f" (and {', '.join(words)})" if words else ""


# What docker-proxy on loopback is, wherever a number measured through it appears.
PROXY_WORDS = "through docker-proxy on loopback, not the study's kernel NAT"


def _networks(manifests, envs) -> tuple[dict[str, str], set[str]]:
    """Each environment's network mode as it ran, and those whose client reached the published
    port through docker-proxy (run.json's nat_path)."""
    networks: dict[str, str] = {}
    proxied: set[str] = set()
    for m in manifests:
        for name, e in (m.get("environments") or {}).items():
            if name not in envs:
                continue
            variant = e.get("variant_as_run") or e.get("variant") or {}
            networks.setdefault(name, str(variant.get("network", "")))
            if str((e.get("metadata") or {}).get("nat_path", "")).startswith("docker-proxy"):
                proxied.add(name)
    return networks, proxied


def _statistics_csv(summary, manifests) -> dict[str, Any]:
    """Every cell's statistics as a CSV inside the report (a data: link): the file stays one
    self-contained file, and the numbers a printed page has no room for are one click away."""
    import base64

    name = "-".join(m.get("run_id", "run") for m in manifests)[:80] + "-statistics.csv"
    text = summary.to_csv(index=False) if summary is not None else ""
    return {"name": name, "rows": 0 if summary is None else len(summary),
            "uri": "data:text/csv;base64," + base64.b64encode(text.encode()).decode()}


def _shown(jobs) -> list[dict[str, Any]]:
    """These (figure, arguments, caption) jobs drawn (a figure the data has not the shape for
    is left out)."""
    from . import figures

    return [{"svg": svg, "caption": caption}
            for (_, _, caption), svg in zip(jobs, figures.draw_all([(name, args) for name, args, _ in jobs])) if svg]


def _p_floor(records, options) -> dict[str, Any] | None:
    """The permutation test's floor at this run's own repetitions, when it is above alpha."""
    sizes = sorted({(int(r["n"]), int(r["native_n"])) for r in records
                    if numbers.finite(r.get("native_n")) and r["n"] >= 2 and r["native_n"] >= 2})
    floors = {size: stats.min_attainable_p(*size, options.n_resamples) for size in sizes}
    high = {size: p for size, p in floors.items() if p > options.alpha}
    if not high:
        return None
    return {"sizes": ", ".join(f"{a} + {b}" for a, b in high), "p": max(high.values())}


def _is_peak(rows, metric, point, baseline) -> bool:
    """Is this sweep point where native's mean peaks (the study's "peak" numbers)?"""
    sub = rows[(rows["metric"] == metric) & (rows["environment"] == baseline)]
    if sub.empty:
        return False
    best = sub.loc[sub["mean"].idxmax() if sub["better"].iloc[0] == "higher" else sub["mean"].idxmin()]
    return best["point"] == point


def _study_cells(study, envs, kinds, ref, better, emulated):
    """The study's values for the configurations our environments stand for, one line each
    (with the environments it is set beside), and the files they come from."""
    if not study:
        return None
    values: dict[str, dict[str, Any]] = {}
    for env in envs:
        if env in emulated:  # a TCG guest's number is never set beside the study's KVM one
            continue
        config = ref.config_for(env, kinds.get(env, ""), study)
        if config in study["values"]:
            v = study["values"][config]
            line = values.setdefault(config, {
                "value": v["value"], "label": ref.labels.get(config, config), "paper_only": v["origin"] == "paper",
                "overhead": ref.ratio(study, config, better), "source": v["source"], "envs": []})
            line["envs"].append(env)
    sources = list(dict.fromkeys(v["source"] for v in values.values()))
    return {"result": study["result"], "note": study.get("note"), "unit": study.get("unit"), "values": values,
            "sources": sources or [study["source"]]}


# How far beyond native a significant win must be, on a tool on which no environment can beat
# native (its facts' implausible_win), to be said to be no win.
PLAUSIBILITY_PCT = 10.0


def _parity(manifests: list[dict[str, Any]], envs: list[str]) -> list[dict[str, Any]]:
    """Per environment, every difference of its execution context from native's (run.json's
    parity), pooled over the runs; `checked` is False for runs made before bench checked."""
    found: dict[str, dict[str, Any]] = {}
    for m in manifests:
        checked = "parity" in m
        for name in [*(m.get("environment_order") or []), *(m.get("parity") or {})]:
            if name not in envs and "/" not in name or name in found and not checked:
                continue
            e = found.setdefault(name, {"name": name, "checked": checked, "differences": {}, "blocking": False,
                                        "allow_mismatch": bool(m.get("allow_mismatch"))})
            for d in (m.get("parity") or {}).get(name, []):
                e["differences"].setdefault(d["key"], d)
                e["blocking"] = e["blocking"] or bool(d.get("blocking"))
    for e in found.values():
        e["differences"] = list(e["differences"].values())
        e["intended"] = [d for d in e["differences"] if d.get("intended")]
        e["unintended"] = [d for d in e["differences"] if not d.get("intended")]
    return list(found.values())


def _run_info(m: dict[str, Any]) -> dict[str, Any]:
    keys = ("run_id", "suite", "profile", "repetitions", "status", "started_at", "ended_at", "wall_seconds",
            "samples", "failures", "order_seed", "allow_tcg", "command", "tool_version_mismatches",
            "pass_env")
    return {k: m.get(k) for k in keys}


def _facts(manifests, df) -> dict[str, Facts]:
    """Each workload's tool facts as its runs recorded them (the first that did), or for runs
    made before they were recorded, its tool's now (workloads.facts_of)."""
    recorded: dict[str, Any] = {}
    for m in manifests:
        for name, w in (m.get("workloads") or {}).items():
            if (w or {}).get("facts"):
                recorded.setdefault(name, w["facts"])
    if df.empty:
        return {}
    pairs = df[["workload", "tool"]].drop_duplicates()
    return {w: facts_of(t, recorded.get(w)) for w, t in zip(pairs["workload"], pairs["tool"])}


def _blas_notes(manifests, facts: Facts) -> list[str]:
    """A tool whose speed is OpenBLAS's: a note where native ran a generic fallback kernel."""
    from .. import blas

    if not facts.uses_blas:
        return []
    for m in manifests:
        core = str(((m.get("execution_context") or {}).get("native") or {}).get("blas_core", ""))
        if core in blas.GENERIC:
            return [f"OpenBLAS ran its generic {core} kernel (it did not recognise this CPU, "
                    f"{(m.get('host') or {}).get('cpu_model_name', 'unnamed')}): HPL runs at a fraction of the CPU's peak "
                    "in every environment alike; its ratios to native hold, its GFLOPS are the library's (bench doctor says so too)."]
    return []


def _setup_notes(manifests, facts: Facts, envs: list[str]) -> list[str]:
    """Where the set-up of this run differs from the study's in a way that moves these numbers."""
    if not facts.client_server:
        return _blas_notes(manifests, facts)
    notes = []
    if not any((m.get("client") or {}).get("kind") == "remote" for m in manifests):
        notes.append("Client and server on the same host (loopback): every transaction costs this host's CPU "
                     "twice and crosses no NIC, so high rates are CPU-bound. The study's clients ran on a second "
                     "machine over 10 GbE; --client-host HOST is its set-up.")
    proxied = sorted({e for m in manifests for e, d in (m.get("environments") or {}).items() if e in envs
                      and str((d.get("metadata") or {}).get("nat_path", "")).startswith("docker-proxy")})
    if proxied:
        notes.append(f"{', '.join(proxied)}: a loopback client reaches the published port through docker-proxy "
                     "(a user-space copy loop), not the kernel's DNAT that a client on another host meets; "
                     "docker-nat-dnat measures NAT through iptables DNAT, from a network namespace of the run's own.")
    return notes


def _description(manifests, workload) -> str:
    for m in manifests:
        w = (m.get("workloads") or {}).get(workload)
        if w:
            return w.get("description", "")
    return ""


def _params(manifests, workload) -> dict[str, Any]:
    for m in manifests:
        w = (m.get("workloads") or {}).get(workload)
        if w:
            return {k: v for k, v in (w.get("params") or {}).items() if v is not None}
    return {}


def _environments(manifests, envs) -> list[dict[str, Any]]:
    out = []
    for env in envs:
        for m in manifests:
            e = (m.get("environments") or {}).get(env)
            if e:
                out.append({"name": env, "kind": e.get("kind"), "description": e.get("description", ""),
                            "variant": e.get("variant_as_run") or e.get("variant") or {},
                            "metadata": e.get("metadata") or {}, "tool_versions": e.get("tool_versions") or {},
                            "run_id": m.get("run_id")})
                break
    return out


# -- rendering -------------------------------------------------------------------------------

def _short(v: Any, width: int = 48) -> str:
    """A context value in a table cell: unset, or at most `width` characters (hashes, flags)."""
    if v is None:
        return "unset"
    text = str(v)
    return repr(text if len(text) <= width else text[:width - 1] + "…")


def _breakable(v: Any):
    """A name of underscored words (get_requests_per_second) that a narrow column may wrap after
    its underscores, never inside a word."""
    from markupsafe import Markup, escape

    return Markup(str(escape(v)).replace("_", "_<wbr>"))


def render(context: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    from .verdict import cell_id

    env.filters.update(num=numbers.num, pct=numbers.pct, pval=numbers.pval, spread=numbers.spread,
                       unit=numbers.unit_label, short=_short, change=numbers.change,
                       interval_words=numbers.interval_words, breakable=_breakable,
                       overhead_words=numbers.overhead_words)
    env.globals.update(cell_id=cell_id)
    return env.get_template("report.html.j2").render(**context)


def render_runs(paths: list[str | os.PathLike], out: str | os.PathLike,
                options: stats.Options = stats.Options()) -> Path:
    """Build and write the report; the file appears whole or not at all."""
    html = render(build(paths, options))
    with output_file(out) as f:
        f.write(html)
    return Path(out)
