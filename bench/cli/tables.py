"""The tables the commands print on a terminal, as lines that fit its width: the end-of-run
summary of `bench run`, the cells of `bench compare`, the listings of `bench list`. Each takes
plain data and returns lines; the command prints them."""

from __future__ import annotations

import statistics
import textwrap

from .. import text


# -- bench run: each workload's headline metric per environment ------------------------------------

def summary_table(values: dict[tuple[str, str], list[float]], headline: dict[str, tuple[str, str]],
                  units: dict[str, str], emulated: set[str], columns: int) -> list[str]:
    """Per workload a line naming its headline metric, then mean, SD and n per environment."""
    labels = {env: f"{env} (TCG)" if env in emulated else env for _, env in values}
    ew = max([len("environment"), *map(len, labels.values())])
    lines = ["", "each workload's headline metric (its tool's first), per environment:",
             text.fit(f"  {'environment':<{ew}}  {'mean':>8}  {'sd':>8}  {'n':>3}", columns)]
    workload = None
    for (w, env), vals in values.items():
        if w != workload:
            workload = w
            metric, point = headline[w]
            lines.append(text.fit(f"{w} · {metric} ({units[w]})" + (f" @ {point}" if point else ""), columns))
        sd = statistics.stdev(vals) if len(vals) > 1 else float("nan")
        lines.append(text.fit(f"  {labels[env]:<{ew}}  {text.human(statistics.fmean(vals)):>8}  "
                              f"{text.human(sd):>8}  {len(vals):>3}", columns))
    return lines


# -- bench compare: per cell, one line per metric ---------------------------------------------------

def _p_value(p: float) -> str:
    return "–" if p != p else "<0.001" if p < 0.001 else f"{p:.3f}"


def _interval(r) -> tuple[str, str] | str:
    """The interval's two ends, or why there is none."""
    if min(r.n_a, r.n_b) < 2:  # one repetition says nothing of the spread: no honest interval
        return f"no interval with n = {min(r.n_a, r.n_b)}"
    if r.overhead_low != r.overhead_low or r.overhead_high != r.overhead_high:
        return "no interval"
    if abs(r.overhead_low) == float("inf") or abs(r.overhead_high) == float("inf"):
        return "unbounded interval"  # Fieller: A's mean is not clearly away from zero
    return text.percent(r.overhead_low), text.percent(r.overhead_high)


def _flags(r) -> str:
    verdict = ("REGRESSION" if r.regression else "worse" if r.worse else "better" if r.better
               else "significant" if r.significant else "")
    return " ".join(f for f in (verdict, "noisy" * bool(r.noisy), "few" * bool(r.few)) if f)


def _metric_label(metric: str, headline: bool, width: int | None = None) -> str:
    """The metric's name, marked * when it is its cell's headline; cut to width, the mark kept."""
    mark = " *" if headline else ""
    return (metric if width is None else text.fit(metric, width - len(mark))) + mark


def _compare_row(r) -> dict:
    """One metric's line of `bench compare`, as the texts of its columns."""
    return {"metric": _metric_label(r.metric, r.headline), "name": r.metric, "headline": r.headline,
            "unit": r.unit, "A": text.human(r.mean_a), "B": text.human(r.mean_b),
            "change": text.percent(r.overhead_pct), "interval": _interval(r), "p": _p_value(r.p), "flags": _flags(r),
            "one_repetition": min(r.n_a, r.n_b) < 2}


def compare_lines(listed: list[list], columns: int) -> list[str]:
    """A header, then per cell a line naming it and one line per metric, in columns sized to
    what is listed and cut at the terminal's width. listed: per cell, its rows of the verdict."""
    cells = [[_compare_row(r) for r in group] for group in listed]
    rows = [row for cell in cells for row in cell]
    ends = [row["interval"] for row in rows if isinstance(row["interval"], tuple)]
    low = max((len(lo) for lo, _ in ends), default=0)
    high = max((len(hi) for _, hi in ends), default=0)
    for row in rows:
        if isinstance(row["interval"], tuple):   # the ends aligned on their own columns, comma under comma
            row["interval"] = f"[{row['interval'][0]:>{low}}, {row['interval'][1]:>{high}}]"
        if row.pop("one_repetition"):            # no interval and no p: the reason takes both columns
            row["p"] = None
    head = {"metric": "metric", "unit": "unit", "A": "A", "B": "B", "change": "change", "interval": "95% interval",
            "p": "p", "flags": ""}
    w = {k: max(len(row[k]) for row in [head, *rows] if row["p"] is not None or k not in ("interval", "p"))
         for k in head}
    # Too wide for the terminal: narrow the metric names, not the numbers or the verdict at the end.
    excess = sum(w.values()) + 16 - columns   # 16: the indent and the spaces between columns
    if excess > 0:
        w["metric"] = max(12, w["metric"] - excess)
        for row in rows:
            row["metric"] = _metric_label(row["name"], row["headline"], w["metric"])

    def line(row: dict) -> str:
        tail = (f"{row['interval']:<{w['interval'] + 2 + w['p']}}" if row["p"] is None
                else f"{row['interval']:<{w['interval']}}  {row['p']:>{w['p']}}")
        return text.fit(f"  {row['metric']:<{w['metric']}} {row['unit']:<{w['unit']}}  {row['A']:>{w['A']}}  "
                        f"{row['B']:>{w['B']}}  {row['change']:>{w['change']}}  {tail}  {row['flags']}", columns)

    out = [line(head)]
    for group, cell in zip(listed, cells):
        first = group[0]
        out.append(text.fit(" · ".join(p for p in (first.environment, first.workload, first.point) if p), columns))
        out += [line(row) for row in cell]
    return out


# -- bench list: one line per suite, workload or environment (--long: details under it) ----------------

def _name_width(items: list[dict]) -> int:
    """One column for a section's names, so the long fio names line up with the short ones."""
    return max((len(i["name"]) for i in items), default=0)


def _details(paragraphs: list[str], columns: int) -> list[str]:
    """--long details under a name: each paragraph wrapped, continuation lines indented further.
    Names hold hyphens (docker-nat): lines break at spaces only, unless a word is wider than a line."""
    return [line for p in paragraphs if p
            for line in textwrap.wrap(p, columns, initial_indent=" " * 6, subsequent_indent=" " * 8,
                                      break_on_hyphens=False)]


def suite_lines(suites: list[dict], long: bool, columns: int) -> list[str]:
    nw = _name_width(suites)
    sizes = [f"{s['profile']}, {s['repetitions']} reps" for s in suites]
    sw = max(map(len, sizes), default=0)
    lines = ["suites:"]
    for s, size in zip(suites, sizes):
        if not long:
            lines.append(text.fit(f"  {s['name']:<{nw}}  {size:<{sw}}  {', '.join(s['workloads'])}", columns))
            continue
        lines.append(f"  {s['name']:<{nw}}  {size}")
        lines += _details([s["description"], f"workloads: {', '.join(s['workloads'])}",
                           s["environments"] and f"in: {', '.join(s['environments'])}",
                           *(f"{w} only in: {', '.join(envs)}" for w, envs in s["only"].items())], columns)
    return lines


def workload_lines(workloads: list[dict], long: bool, profile: str, columns: int) -> list[str]:
    nw = _name_width(workloads)
    tw = max((len(w["tool"]) for w in workloads), default=0)
    lines = [f"workloads (parameters for the {profile} profile):" if long else "workloads:"]
    for w in workloads:
        if not long:
            lines.append(text.fit(f"  {w['name']:<{nw}}  {w['tool']:<{tw}}  {w['description']}", columns))
            continue
        params = " ".join(f"{k}={v}" for k, v in w["params"].items() if v is not None)
        lines.append(f"  {w['name']:<{nw}}  {w['tool']}")
        runs = f"{w['warmups']} warm-up(s), timeout {w['timeout']:.0f} s"
        lines += _details([w["description"], f"{params}; {runs}" if params else runs], columns)
    return lines


def environment_lines(every: list[dict], long: bool, available: bool, columns: int) -> list[str]:
    envs = [e for e in every if e["available"]] if available else every
    nw = _name_width(envs)
    kw = max((len(e["kind"]) for e in envs), default=0)
    lines = ["environments:"]
    for e in envs:
        state = "available" if e["available"] else "NOT AVAILABLE"
        if not long:
            lines.append(text.fit(f"  {e['name']:<{nw}}  {e['kind']:<{kw}}  {state:<13}  {e['description']}",
                                  columns))
            continue
        variant = e["baseline"] and (f"variant of {e['baseline']} ({e['dimension']})"
                                     + ("" if e["by_default"] else "; runs only when named (--env or a suite)"))
        lines.append(f"  {e['name']:<{nw}}  {e['kind']}")
        reasons: dict[str, list[str]] = {}   # one line per reason: Compose refuses most tools alike
        for tool, why in e["refuses"].items():
            reasons.setdefault(why, []).append(tool)
        refused = [f"does not run {', '.join(tools)}: {why}" for why, tools in reasons.items()]
        lines += _details([f"{state}: {e['reason']}", e["description"], variant, *refused], columns)
    if not long:
        ready = sum(e["available"] for e in every)
        lines.append(f"\n{ready} of {len(every)} available here; --long says why the others are not")
    return lines
