"""The report's figures, drawn as inline SVG (.svg) from the summary's rows: each one's numbers
in hover text, vectors for print, no image file and no script, so that the HTML stays one
self-contained file that works offline. A figure costs milliseconds whatever the number of
samples: it is drawn from the cells' statistics, never from the samples.

Every figure that sets environments against native draws performance relative to native: up
(or right) is better whatever the metric (a latency's ratio is inverted), on a log axis, so
that ×0.2 and ×5 are as far from 1 and nothing is clipped; an interval that has no bound is
drawn to the axis's edge with an arrow. Colours are the environments' own (bench.palette).

Each function takes rows of bench.stats.summarize() and returns SVG markup, or None when the
data has not the shape for that figure.
"""

from __future__ import annotations

import math
import re

from .. import palette, stats
from .numbers import unit_label
from .svg import Axis, Figure, fmt, log_ticks, logit_axis, nice_ticks, text_width, tick_label

WIDTH, HEIGHT = 768, 326      # CSS pixels (8 x 3.4 inches at 96 dpi, as the study's figures)
PERCENTILE = re.compile(r"^(?P<prefix>.*_)p(?P<pct>\d+(?:_\d+)?)$")
RATIO_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.8, 1, 1.25, 2, 5, 10, 20, 50, 100)
BAND = 1.05   # the equivalence band drawn (bench.stats.Options.band)


def _records(rows) -> list[dict]:
    """Summary rows as dicts (a DataFrame's, or already dicts): a figure reads a few hundred
    numbers, which a dict gives in nanoseconds and a DataFrame row in a millisecond."""
    return rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)


def draw_all(jobs: list[tuple[str, tuple]]) -> list:
    """Each (function name, arguments) drawn, in order: milliseconds each, so in this process."""
    return [globals()[name](*args) for name, args in jobs]


def env_label(env: str, emulated: set[str]) -> str:
    return f"{env} (TCG)" if env in emulated else env


def _log_limits(values: list[float]) -> tuple[float, float]:
    """A log axis around 1 holding every value, at least 0.5 to 2."""
    finite = [v for v in values if math.isfinite(v) and v > 0]
    low, high = min([0.5, *finite]), max([2.0, *finite])
    return low / 1.25, high * 1.25


# How a bar shows its cell's verdict (bench.stats.verdict): the figure says what the words say.
VERDICT_STYLE = {"cost": {"alpha": 1.0}, "gain": {"alpha": 1.0},
                 "equivalent": {"alpha": 0.45}, "unresolved": {"alpha": 0.3, "hatch": "xx"}}


def _legend_width(labels) -> float:
    return max((text_width(s, 10) for s in labels), default=0) + 30


def _ratio_bars(items, envs, baseline, emulated, title, vertical: bool, label_room: float = 0):
    """Grouped bars of performance relative to native growing from ×1: items = [(label, {env:
    (perf, low, high[, verdict])})]; vertical bars (metrics along x) or horizontal (rows)."""
    others = [e for e in envs if e != baseline]
    colours = palette.colours(envs)
    labels = [env_label(e, emulated) for e in others]
    legend = _legend_width(labels)
    limits = _log_limits([v for _, by_env in items for t in by_env.values() for v in t[:3]])
    slot = 0.8 / max(1, len(others))
    if vertical:
        longest = max((text_width(label, 10) for label, _ in items), default=0)
        bottom = 40 + (longest * 0.45 if len(items) > 3 else 0)
        height = HEIGHT + (bottom - 40)
        fig = Figure(WIDTH, height, title)
        x0, x1, y0, y1 = 58, WIDTH - legend - 10, height - bottom, 28
        value = Axis(limits[0], limits[1], y0, y1, log=True)
        step = (x1 - x0) / max(1, len(items))
        place = [x0 + step * (j + 0.5) for j in range(len(items))]
    else:
        room = label_room or max((text_width(label, 10) for label, _ in items), default=0) + 10
        row = 16 * max(1, len(others)) ** 0.5 + 8
        height = max(row * len(items) + 80, 180)   # a single row still reads as a figure
        fig = Figure(WIDTH, height, title)
        x0, x1, y0, y1 = room, WIDTH - legend - 10, 28, height - 44
        value = Axis(limits[0], limits[1], x0, x1, log=True)
        step = (y1 - y0) / max(1, len(items))
        place = [y0 + step * (j + 0.5) for j in range(len(items))]
    _ratio_axis(fig, value, limits, (x0, x1, y0, y1), vertical)
    one = value(1.0)
    words = f"performance relative to {baseline} (×1 = native; {'up' if vertical else 'right'} is better)"
    clipped = False
    for j, (label, by_env) in enumerate(items):
        for i, env in enumerate(others):
            if env not in by_env or not math.isfinite(by_env[env][0]):
                continue
            perf, lo, hi = by_env[env][:3]
            verdict = by_env[env][3] if len(by_env[env]) > 3 else "cost"
            style = VERDICT_STYLE.get(verdict, {})
            centre = place[j] + step * (-0.4 + slot * (i + 0.5))
            half = step * slot / 2
            tip = (f"{env_label(env, emulated)}, {label}: ×{fmt(perf)} of native, 95 % interval "
                   f"[{fmt(lo)}, {fmt(hi)}]; {verdict}")
            hatch = style.get("hatch") or ("//" if env in emulated else None)
            v, l_, h_ = value(perf), value(lo if math.isfinite(lo) else limits[0]), value(hi if math.isfinite(hi) else limits[1])
            _bar(fig, centre, half, one, (v, l_, h_), colours[env], style.get("alpha", 1.0), tip, hatch, vertical)
            for end, edge, up in ((lo, limits[0], False), (hi, limits[1], True)):
                if not math.isfinite(end) or not limits[0] <= end <= limits[1]:
                    clipped = True
                    e = value(edge)
                    if vertical:
                        fig.marker(centre, e, "^" if up else "v", "#000", 3.5)
                    else:
                        fig.marker(e, centre, ">" if up else "<", "#000", 3.5)
        if vertical:
            if len(items) > 3:
                fig.text(place[j], y0 + 12, label, 10, "end", rotate=-20)
            else:
                fig.text(place[j], y0 + 14, label, 10, "middle")
        else:
            fig.text(x0 - 5, place[j] + 3.5, label, 10, "end")
    if vertical:
        fig.line(x0, one, x1, one, "#000", 0.8)
        fig.line(x0, y1, x0, y0, "#000", 0.8)
        fig.text(14, (y0 + y1) / 2, words, 9, "middle", rotate=-90)
    else:
        fig.line(one, y0, one, y1, "#000", 0.8)
        fig.line(x0, y1, x1, y1, "#000", 0.8)
        fig.text((x0 + x1) / 2, y1 + 30, words, 9, "middle")
    arrows = ("; ▲▼ interval unbounded" if vertical else "; ◀▶ interval unbounded") if clipped else ""
    fig.text(WIDTH / 2, 16, title + arrows, 12, "middle")
    fig.legend(x1 + 14, y1 + 14 if vertical else y0 + 12,
               [(lab, colours[e], "bar") for lab, e in zip(labels, others)])
    return fig.markup()


def _ratio_axis(fig, value, limits, box, vertical: bool) -> None:
    """The equivalence band (grey), and the ratio's ticks with their grid lines."""
    x0, x1, y0, y1 = box
    a, b = value(1 / BAND), value(BAND)
    if vertical:
        fig.rect(x0, b, x1 - x0, a - b, "#d9d9d9")
    else:
        fig.rect(a, y0, b - a, y1 - y0, "#d9d9d9")
    for t in RATIO_TICKS:
        if limits[0] <= t <= limits[1]:
            at = value(t)
            if vertical:
                fig.line(x0, at, x1, at, "#000", 0.5, opacity=0.2)
                fig.text(x0 - 4, at + 3.5, f"×{t:g}", 10, "end")
            else:
                fig.line(at, y0, at, y1, "#000", 0.5, opacity=0.2)
                fig.text(at, y1 + 14, f"×{t:g}", 10, "middle")


def _bar(fig, centre, half, one, ends, colour, alpha, tip, hatch, vertical: bool) -> None:
    """One bar from ×1 to its value, with its interval's error bar; ends in pixels."""
    v, low, high = ends
    if vertical:
        fig.rect(centre - half, one, 2 * half, v - one, colour, alpha, "#000", tip, hatch)
        fig.line(centre, low, centre, high, "#000", 0.8)
        for end in (low, high):
            fig.line(centre - 2, end, centre + 2, end, "#000", 0.8)
    else:
        fig.rect(one, centre - half, v - one, 2 * half, colour, alpha, "#000", tip, hatch)
        fig.line(low, centre, high, centre, "#000", 0.8)
        for end in (low, high):
            fig.line(end, centre - 2, end, centre + 2, "#000", 0.8)


def normalized_bars(rows, envs: list[str], baseline: str, emulated: set[str], title: str):
    """Each metric's performance relative to native (×1), one bar per environment, with the 95 %
    interval of the ratio as error bars; pale bars equivalent, pale cross-hatched unresolved (the
    cells' verdict), hatched bars emulated (TCG)."""
    rows = _records(rows)
    others = [e for e in envs if e != baseline]
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    if not others or not metrics or not any(_finite(r.get("ratio")) for r in rows):
        return None
    items = []
    for m in metrics:
        items.append((m, {r["environment"]: (*stats.performance(r["ratio"], r["ratio_low"], r["ratio_high"], r["better"]),
                                             r["verdict"] if isinstance(r.get("verdict"), str) else "unresolved")
                          for r in rows if r["metric"] == m and r["environment"] != baseline}))
    return _ratio_bars(items, envs, baseline, emulated, title, vertical=True)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def overview(items, envs: list[str], baseline: str, emulated: set[str], title: str):
    """The study's kind of summary figure: every workload's headline metric as performance
    relative to native, one row per (workload, metric), one bar per environment."""
    if not items or len(envs) < 2:
        return None
    return _ratio_bars(items, envs, baseline, emulated, title, vertical=False)


def percentile_points(rows) -> dict[str, list[tuple[float, str]]]:
    """Metrics named <prefix>p<pct> (fio's read_clat_p99_9): prefix -> [(percentile, metric)]."""
    found: dict[str, list[tuple[float, str]]] = {}
    for metric in dict.fromkeys(r["metric"] for r in _records(rows)):
        m = PERCENTILE.match(metric)
        if m:
            found.setdefault(m["prefix"], []).append((float(m["pct"].replace("_", ".")), metric))
    return {k: sorted(v) for k, v in found.items() if len(v) >= 5}


MARKERS = ("o", "s", "^", "D", "v", "o", "s", "^")
DASHES = (None, "6 3", "6 2 1.5 2", "1.5 2", "5 1.5 1.5 1.5 1.5 1.5")


def _frame(fig, x0, x1, y0, y1):
    fig.line(x0, y0, x1, y0, "#000", 0.8)
    fig.line(x0, y0, x0, y1, "#000", 0.8)


def latency_cdf(rows, envs: list[str], emulated: set[str], title: str):
    """Completion-latency distribution from the percentile metrics: the mean over repetitions of
    each percentile's latency, per environment. The percentile axis is a logit scale, so the
    tail (99 %, 99.9 %, 99.99 %) is spread out rather than pressed against 1."""
    rows = _records(rows)
    series = percentile_points(rows)
    if not series:
        return None
    colours = palette.colours(envs)
    labels = [env_label(e, emulated) for e in envs]
    legend = _legend_width(labels)
    fig = Figure(WIDTH, HEIGHT + 58, title)
    panel = (WIDTH - legend - 20) / len(series)
    stats_of = {(r["environment"], r["metric"]): (r["mean"], r["unit"]) for r in rows}
    for k, (prefix, points) in enumerate(series.items()):
        x0, x1, y0, y1 = 70 + k * panel, (k + 1) * panel - 10, HEIGHT + 10, 36
        shown = [p / 100 for p, _ in points if 0 < p < 100]
        lines, unit = [], ""
        for env in envs:
            xs = [(stats_of[(env, m)][0], p / 100, m) for p, m in points
                  if 0 < p < 100 and (env, m) in stats_of and stats_of[(env, m)][0] > 0]
            if xs:
                unit = stats_of[(env, points[0][1])][1] if (env, points[0][1]) in stats_of else unit
                lines.append((env, xs))
        values = [x for _, xs in lines for x, _, _ in xs]
        if not values:
            continue
        x = Axis(min(values) / 1.1, max(values) * 1.1, x0, x1, log=True)
        y = logit_axis(min(shown) * 0.8, 1 - (1 - max(shown)) * 0.8, y0, y1)
        for t in (0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999):
            if min(shown) <= t <= max(shown):
                fig.line(x0, y(t), x1, y(t), "#000", 0.5, opacity=0.2)
                fig.text(x0 - 4, y(t) + 3.5, f"p{t * 100:g}", 10, "end")
        for t in log_ticks(x.low, x.high):
            fig.line(x(t), y0, x(t), y1, "#000", 0.5, opacity=0.2)
            fig.text(x(t), y0 + 13, tick_label(t), 9, "middle")
        for i, (env, xs) in enumerate(lines):
            fig.path([(x(v), y(p)) for v, p, _ in xs], colours[env], 1.5, dash="5 3" if env in emulated else None,
                     tip=env_label(env, emulated))
            for v, p, m in xs:
                fig.marker(x(v), y(p), "o", colours[env], 2.2, tip=f"{env_label(env, emulated)} {m}: {fmt(v)} {unit_label(unit)}")
        _frame(fig, x0, x1, y0, y1)
        fig.text((x0 + x1) / 2, y0 + 30, f"{prefix.rstrip('_')} ({unit_label(unit)}, log)", 10, "middle")
        fig.text(x0 - 44, (y0 + y1) / 2, "percentile of I/Os (logit)", 9, "middle", rotate=-90)
    fig.text(WIDTH / 2, 16, title, 12, "middle")
    fig.legend(WIDTH - legend + 4, 50, [(lab, colours[e], "line" if e not in emulated else "5 3")
                                         for lab, e in zip(labels, envs)])
    return fig.markup()


def sweep(rows, key: str, envs: list[str], baseline: str, emulated: set[str], title: str, log_y: bool = False):
    """A metric against its sweep parameter (Redis clients, MariaDB threads): mean with its 95 %
    confidence interval per environment; a log x axis when the points span a factor of 10, and
    a log y axis when asked (instance costs: a fork, a container and a VM are orders apart)."""
    column = f"sweep_{key}"
    rows = [r for r in _records(rows) if r.get(column) is not None and r[column] == r[column]]
    if len({r[column] for r in rows}) < 2:
        return None
    colours = palette.colours(envs)
    labels = [env_label(e, emulated) for e in envs]
    legend = _legend_width(labels)
    fig = Figure(WIDTH, HEIGHT, title)
    x0, x1, y0, y1 = 70, WIDTH - legend - 10, HEIGHT - 44, 28
    unit, metric = rows[0]["unit"], rows[0]["metric"]
    series = []
    for env in envs:
        pts = sorted((float(r[column]), r["mean"], r["ci_low"], r["ci_high"]) for r in rows if r["environment"] == env)
        if pts:
            series.append((env, pts))
    xs = sorted({p for _, pts in series for p, *_ in pts})
    ys = [v for _, pts in series for _, m, lo, hi in pts for v in (m, lo, hi) if math.isfinite(v)]
    if not ys:
        return None
    log_x = xs[0] > 0 and xs[-1] / xs[0] >= 10
    span = (xs[-1] - xs[0]) * 0.04 or 1
    x = Axis(xs[0] / 1.15 if log_x else xs[0] - span, xs[-1] * 1.15 if log_x else xs[-1] + span, x0, x1, log=log_x)
    if log_y:
        positive = [v for v in ys if v > 0] or [1.0]
        y = Axis(min(positive) / 1.3, max(positive) * 1.3, y0, y1, log=True)
        ticks = log_ticks(y.low, y.high)
    else:
        top = max(ys) * 1.08 if max(ys) > 0 else 1.0
        y = Axis(0.0, top, y0, y1)
        ticks = nice_ticks(0.0, top)
    for t in ticks:
        fig.line(x0, y(t), x1, y(t), "#000", 0.5, opacity=0.2)
        fig.text(x0 - 4, y(t) + 3.5, tick_label(t), 10, "end")
    for t in xs:
        fig.line(x(t), y0, x(t), y1, "#000", 0.5, opacity=0.15)
        fig.text(x(t), y0 + 13, f"{t:g}", 10, "middle")
    for i, (env, pts) in enumerate(series):
        colour = colours[env]
        # each environment its own marker and dash: two that measure alike stay told apart
        fig.path([(x(p), y(m)) for p, m, _, _ in pts], colour, 1.5, DASHES[i % len(DASHES)], env_label(env, emulated))
        for p, m, lo, hi in pts:
            if math.isfinite(lo) and math.isfinite(hi):
                fig.line(x(p), y(lo), x(p), y(hi), colour, 1.0)
                for end in (lo, hi):
                    fig.line(x(p) - 3, y(end), x(p) + 3, y(end), colour, 1.0)
            fig.marker(x(p), y(m), MARKERS[i % len(MARKERS)], colour, 3.5 + (i % 3) * 0.5, filled=not i % 2,
                       tip=f"{env_label(env, emulated)}, {key}={p:g}: {fmt(m)} {unit_label(unit)}, 95 % CI [{fmt(lo)}, {fmt(hi)}]")
    _frame(fig, x0, x1, y0, y1)
    fig.text((x0 + x1) / 2, y0 + 30, key, 11, "middle")
    fig.text(16, (y0 + y1) / 2, f"{metric} ({unit_label(unit)})", 9, "middle", rotate=-90)
    fig.text(WIDTH / 2, 16, title, 12, "middle")
    fig.legend(x1 + 14, y1 + 14, [(lab, colours[e], DASHES[i % len(DASHES)] or "line")
                                  for i, (lab, e) in enumerate((env_label(e, emulated), e) for e, _ in series)])
    return fig.markup()


def start_cdf(rows: list[dict], emulated: set[str], title: str):
    """Start latency as a distribution per environment (the study's latency-CDF figure): every
    serial start, sorted, against its cumulative fraction; a log time axis, since a fork, a
    container and a VM are orders of magnitude apart."""
    rows = [r for r in rows if r["start_values"]]
    if not rows:
        return None
    colours = palette.colours([r["environment"] for r in rows])
    labels = [env_label(r["environment"], emulated) for r in rows]
    legend = _legend_width(labels)
    fig = Figure(WIDTH, HEIGHT, title)
    x0, x1, y0, y1 = 56, WIDTH - legend - 10, HEIGHT - 44, 28
    values = [float(v) for r in rows for v in r["start_values"] if float(v) > 0]
    if not values:
        return None
    x = Axis(min(values) / 1.2, max(values) * 1.2, x0, x1, log=True)
    y = Axis(0.0, 1.02, y0, y1)
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        fig.line(x0, y(t), x1, y(t), "#000", 0.5, opacity=0.2)
        fig.text(x0 - 4, y(t) + 3.5, f"{t:g}", 10, "end")
    for t in log_ticks(x.low, x.high):
        fig.line(x(t), y0, x(t), y1, "#000", 0.5, opacity=0.2)
        fig.text(x(t), y0 + 13, tick_label(t), 9, "middle")
    for i, r in enumerate(rows):
        xs = sorted(float(v) for v in r["start_values"] if float(v) > 0)
        steps, before = [], 0.0
        for k, v in enumerate(xs, 1):
            steps += [(x(v), y(before)), (x(v), y(k / len(xs)))]
            before = k / len(xs)
        colour = colours[r["environment"]]
        fig.path(steps, colour, 1.5, "5 3" if r["emulated"] else None, env_label(r["environment"], emulated))
        for k, v in enumerate(xs, 1):
            fig.marker(x(v), y(k / len(xs)), MARKERS[i % len(MARKERS)], colour, 2.2,
                       tip=f"{env_label(r['environment'], emulated)}: start {k} of {len(xs)} by time, {fmt(v)} s")
    _frame(fig, x0, x1, y0, y1)
    fig.text((x0 + x1) / 2, y0 + 30, "seconds from the request to a first exec returning (log)", 10, "middle")
    fig.text(16, (y0 + y1) / 2, "fraction of starts", 9, "middle", rotate=-90)
    fig.text(WIDTH / 2, 16, title, 12, "middle")
    fig.legend(x1 + 14, y1 + 14, [(lab, colours[r["environment"]], "5 3" if r["emulated"] else "line")
                                  for lab, r in zip(labels, rows)])
    return fig.markup()


def instance_memory(rows: list[dict], emulated: set[str], title: str):
    """Host memory per idle instance in absolute MiB (not normalised: the host has no instance),
    horizontal bars with the 95 % interval over repetitions, each labelled with its number."""
    if not rows:
        return None
    colours = palette.colours([r["environment"] for r in rows])
    labels = [env_label(r["environment"], emulated) for r in rows]
    room = max(text_width(s, 10) for s in labels) + 12
    fig = Figure(WIDTH, 43 * len(rows) + 90, title)
    x0, x1, y0, y1 = room, WIDTH - 20, 28, 43 * len(rows) + 40
    top = max(r["memory_high"] if math.isfinite(r["memory_high"]) else r["memory_mean"] for r in rows) * 1.35
    x = Axis(0.0, top if top > 0 else 1.0, x0, x1)
    for t in nice_ticks(0.0, x.high):
        fig.line(x(t), y0, x(t), y1, "#000", 0.5, opacity=0.2)
        fig.text(x(t), y1 + 13, tick_label(t), 10, "middle")
    step = (y1 - y0) / len(rows)
    for i, r in enumerate(rows):
        centre, colour = y0 + step * (i + 0.5), colours[r["environment"]]
        mean, low, high = r["memory_mean"], r["memory_low"], r["memory_high"]
        tip = f"{labels[i]}: {fmt(mean)} MiB per idle instance, 95 % CI [{fmt(low)}, {fmt(high)}], at {r['memory_n']}"
        fig.rect(x0, centre - step * 0.35, x(mean) - x0, step * 0.7, colour, 1.0, None, tip,
                 "//" if r["emulated"] else None)
        if math.isfinite(low):
            lo, hi = x(max(low, 0.0)), x(max(high, mean))
            fig.line(lo, centre, hi, centre, "#000", 0.8)
            for end in (lo, hi):
                fig.line(end, centre - 3, end, centre + 3, "#000", 0.8)
        fig.text(x(mean) + 6, centre + 3.5, f"{mean:.3g} MiB (at {r['memory_n']})", 10)
        fig.text(x0 - 5, centre + 3.5, labels[i], 10, "end")
    _frame(fig, x0, x1, y1, y0)
    fig.text((x0 + x1) / 2, y1 + 30, "MiB per idle instance (PSS of its host processes; right is more memory)", 10, "middle")
    fig.text(WIDTH / 2, 16, title, 12, "middle")
    return fig.markup()
