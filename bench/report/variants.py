"""Variants side by side: each choice (a dimension such as container security or the storage
driver) against its own default, not against native.

An environment's `dimension` and `baseline` come from workloads/environments.yaml and are
recorded in run.json, so a report shows the grouping the run had. Every variant is compared
with its baseline on each workload's headline metric, on the tools the variant's choice can
move (its `affects`; the others are named, not judged), cell by cell (and sweep point by sweep
point), with the same statistics as the executive summary: the ratio variant/baseline with
Fieller's interval and the permutation test.
"""

from __future__ import annotations

from typing import Any

from .. import stats


def dimensions(manifests: list[dict[str, Any]], present: set[str]) -> dict[str, dict[str, Any]]:
    """{dimension: {"baseline": name, "variants": [names]}} for variants present in the data
    whose baseline is present too; the first run that names an environment decides."""
    seen: dict[str, tuple[str, str, list[str]]] = {}
    for m in manifests:
        for name, e in (m.get("environments") or {}).items():
            if name not in seen and e.get("dimension") and e.get("baseline"):
                seen[name] = (e["dimension"], e["baseline"], list(e.get("affects") or []))
    out: dict[str, dict[str, Any]] = {}
    for name, (dim, base, affects) in seen.items():
        if name in present and base in present:
            group = out.setdefault(dim, {"baseline": base, "variants": [], "affects": {}})
            if group["baseline"] != base:   # one baseline per dimension; another is a new group
                group = out.setdefault(f"{dim} (vs {base})", {"baseline": base, "variants": [], "affects": {}})
            group["variants"].append(name)
            group["affects"][name] = affects
    return out


def build(df, manifests: list[dict[str, Any]], workload_order: list[str], headline: dict[str, str],
          emulated: set[str], options: stats.Options = stats.Options()) -> list[dict[str, Any]]:
    """One entry per dimension: its baseline and a row per (variant, workload, sweep point)."""
    if df.empty:
        return []
    groups = dimensions(manifests, set(df["environment"]))
    if not groups:
        return []
    wanted = {e for g in groups.values() for e in [g["baseline"], *g["variants"]]}
    heads = df[df["environment"].isin(wanted) & (df["metric"] == df["workload"].map(headline))]
    sweeps = stats.sweep_params(df)
    out, pending = [], []
    tool_of = dict(zip(heads["workload"], heads["tool"]))
    for dim, g in groups.items():
        rows, untouched = [], []
        for w in workload_order:
            sub = heads[heads["workload"] == w]
            keys = sweeps.get(w, [])
            by_env = {env: part for env, part in sub.groupby("environment")}
            base = by_env.get(g["baseline"])
            if base is None:
                continue
            for variant in g["variants"]:
                mine = by_env.get(variant)
                if mine is None:
                    continue
                affects = g["affects"].get(variant) or []
                if affects and tool_of.get(w) not in affects:
                    # the choice cannot move this tool's numbers: a difference would be noise
                    untouched.append(w)
                    continue
                first = mine.iloc[0]
                for point, values, ref in _pairs(mine, base, keys):
                    row = {"variant": variant, "workload": w, "metric": first["metric"],
                           "unit": first["unit"], "better": first["better"], "point": point,
                           "mean": float(values.mean()), "baseline_mean": float(ref.mean()),
                           "n": len(values), "n_baseline": len(ref),
                           "emulated": variant in emulated or g["baseline"] in emulated}
                    rows.append(row)
                    pending.append((row, values, ref))
        if rows or untouched:
            out.append({"dimension": dim, "baseline": g["baseline"], "variants": g["variants"], "rows": rows,
                        "untouched": list(dict.fromkeys(untouched))})
    # One batch of permutation tests for every pair, as the summary does.
    ps = stats.permutation_p_many([(v, r) for _, v, r in pending], options.n_resamples, options.seed)
    for (row, values, ref), p in zip(pending, ps):
        row.update(stats.compare(values, ref, row["better"], options, p=p))
        row["resolved"] = row["verdict"] != "unresolved"
        row["resolve_n"] = stats.repetitions_to_resolve(stats.describe(values)["cov"], stats.describe(ref)["cov"],
                                                        confidence=options.confidence)
    return out


def _pairs(mine, base, keys: list[str]):
    """(point label, variant values, baseline values) per sweep point both have."""
    if not keys:
        yield "", mine["value"].to_numpy(float), base["value"].to_numpy(float)
        return
    columns = [stats.param_column(k) for k in keys]
    theirs = {k: part["value"].to_numpy(float) for k, part in base.groupby(columns, dropna=False)}
    for k, part in mine.groupby(columns, dropna=False):
        if k in theirs:
            # the summary's own label of a sweep point, so the two sections name it alike
            yield stats._point_label(keys, k if isinstance(k, tuple) else (k,)), part["value"].to_numpy(float), theirs[k]
