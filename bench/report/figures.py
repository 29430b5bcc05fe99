"""The report's figures, drawn with matplotlib (Agg) and returned as PNG data URIs at twice the
size they are shown (sharp on screen and in print), so that the HTML stays one self-contained file.

Every figure that sets environments against native draws performance relative to native: up is
better whatever the metric (a latency's ratio is inverted), on a log axis, so that ×0.2 and ×5
are as far from 1 and nothing is clipped; an interval that has no bound is drawn to the axis's
edge with an arrow. Colours are the environments' own (bench.palette).

Each function takes rows of bench.stats.summarize() and returns a data URI, or None when the
data has not the shape for that figure.
"""

from __future__ import annotations

import base64
import io
import math
import re

import matplotlib

matplotlib.use("Agg")  # no display, no GUI toolkit: the report renders on a headless server

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .. import palette, stats  # noqa: E402
from ..parallel import pmap  # noqa: E402
from .numbers import unit_label  # noqa: E402

WIDTH, HEIGHT, DPI = 8.0, 3.4, 96
SCALE = 2            # PNGs are drawn at twice their shown size
PERCENTILE = re.compile(r"^(?P<prefix>.*_)p(?P<pct>\d+(?:_\d+)?)$")


def _share_text_metrics() -> None:
    """Measure each text once per process, not once per figure.

    matplotlib caches a text's size (FreeType layout) per renderer, and every figure, and each of
    the two draws that bbox_inches="tight" makes, has a renderer of its own: the same tick
    labels, environment names and titles were laid out again and again, a fifth of a figure's
    time. For Agg, plain (not math) text's size depends only on the text, the font, the dpi and
    the hinting settings (RendererAgg.get_text_width_height_descent uses nothing else of the
    renderer), so one cache keyed on those gives the very same numbers, and the very same pixels. Only where matplotlib
    still has the hook this replaces (a private one; without it nothing changes but the time).
    """
    from matplotlib import text as mtext
    from matplotlib.backends.backend_agg import RendererAgg

    original = getattr(mtext, "_get_text_metrics_with_cache", None)
    if original is None or getattr(original, "_bench_shared", False):
        return
    sizes: dict = {}

    def metrics(renderer, text, fontprop, ismath, dpi):
        if type(renderer) is not RendererAgg or ismath:   # math text: its own rcParams; left alone
            return original(renderer, text, fontprop, ismath, dpi)
        rc = matplotlib.rcParams   # what FreeType's layout reads besides the font and the dpi
        key = (text, fontprop.copy(), dpi,   # a copy: FontProperties is mutable
               rc["text.hinting"], rc["text.hinting_factor"], rc["text.kerning_factor"])
        size = sizes.get(key)
        if size is None:
            if len(sizes) > 65536:
                sizes.clear()
            size = sizes[key] = renderer.get_text_width_height_descent(text, fontprop, ismath)
        return size

    metrics._bench_shared = True
    mtext._get_text_metrics_with_cache = metrics


_share_text_metrics()


def _uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI * SCALE, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def shown_width(uri: str) -> int | None:
    """The width in CSS pixels a figure is shown at: its PNG's own width (IHDR) over SCALE."""
    if not uri.startswith("data:image/png;base64,"):
        return None
    header = base64.b64decode(uri[len("data:image/png;base64,"):][:44])
    return int.from_bytes(header[16:20], "big") // SCALE


def _draw(job):
    name, args = job
    return globals()[name](*args)


def draw_all(jobs: list[tuple[str, tuple]]) -> list[str | None]:
    """Each (function name, arguments) drawn, in order, in worker processes (bench.parallel):
    the figures are independent, and the same drawn here or there."""
    return pmap(_draw, jobs)


def env_label(env: str, emulated: set[str]) -> str:
    return f"{env} (TCG)" if env in emulated else env


def _log_limits(values: list[float]) -> tuple[float, float]:
    """A log axis around 1 holding every value, at least 0.5 to 2."""
    finite = [v for v in values if math.isfinite(v) and v > 0]
    low, high = min([0.5, *finite]), max([2.0, *finite])
    return low / 1.25, high * 1.25


def _ratio_axis(ax, limits, baseline: str, vertical: bool = True) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.8, 1, 1.25, 2, 5, 10, 20, 50, 100)
             if limits[0] <= t <= limits[1]]
    axis = ax.yaxis if vertical else ax.xaxis
    (ax.set_yscale if vertical else ax.set_xscale)("log")
    (ax.set_ylim if vertical else ax.set_xlim)(*limits)
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"×{v:g}"))
    label = f"performance relative to {baseline} (×1 = native; up is better)"
    (ax.set_ylabel if vertical else ax.set_xlabel)(label if vertical else label.replace("up", "right"), fontsize=8)
    (ax.axhline if vertical else ax.axvline)(1.0, color="black", linewidth=0.8)
    # the equivalence band (bench.stats.Options.band): an interval inside it is "equivalent"
    (ax.axhspan if vertical else ax.axvspan)(1 / 1.05, 1.05, color="0.85", zorder=0, linewidth=0)


# How a bar shows its cell's verdict (bench.stats.verdict): the figure says what the words say.
VERDICT_STYLE = {"cost": {"alpha": 1.0}, "gain": {"alpha": 1.0},
                 "equivalent": {"alpha": 0.45}, "unresolved": {"alpha": 0.3, "hatch": "xx"}}


def _bars(ax, items, envs, baseline, emulated, limits, vertical=True):
    """Grouped bars of performance relative to native: items = [(label, {env: (perf, low, high)})],
    or (perf, low, high, verdict): a verdict other than cost or gain draws its bar pale
    (equivalent) or pale and cross-hatched (unresolved)."""
    others = [e for e in envs if e != baseline]
    width = 0.8 / max(1, len(others))
    colours = palette.colours(envs)
    clipped = False
    for i, env in enumerate(others):
        pos, val, err_lo, err_hi, open_ends, verdicts = [], [], [], [], [], []
        for j, (_, by_env) in enumerate(items):
            if env not in by_env or not math.isfinite(by_env[env][0]):
                continue
            perf, lo, hi = by_env[env][:3]
            at = j - 0.4 + width * (i + 0.5)
            verdicts.append(by_env[env][3] if len(by_env[env]) > 3 else "cost")
            pos.append(at)
            val.append(perf)
            # an end with no bound is drawn to the axis's edge, and marked with an arrow there
            err_lo.append(perf - (lo if math.isfinite(lo) else limits[0]))
            err_hi.append((hi if math.isfinite(hi) else limits[1]) - perf)
            for end, edge, marker in ((lo, limits[0], "v" if vertical else "<"), (hi, limits[1], "^" if vertical else ">")):
                if not math.isfinite(end) or not limits[0] <= end <= limits[1]:
                    open_ends.append((at, edge, marker))
        if not pos:
            continue
        kw = dict(color=colours[env], label=env_label(env, emulated), hatch="//" if env in emulated else None,
                  edgecolor="black", linewidth=0.4)
        # bars grow from ×1 (native), up or down, as the study's normalized figures do
        bottoms = [1.0] * len(pos)
        heights = [v - 1.0 for v in val]
        if any(v in ("equivalent", "unresolved") for v in verdicts):
            ax.bar([], [], color=kw["color"], label=kw["label"], hatch=kw["hatch"], edgecolor="black", linewidth=0.4)
            for k, (at, h, b) in enumerate(zip(pos, heights, bottoms)):
                style = VERDICT_STYLE.get(verdicts[k], {})
                one = {**kw, "label": None, "alpha": style.get("alpha", 1.0), "hatch": style.get("hatch", kw["hatch"])}
                (ax.bar(at, h, width, bottom=b, **one) if vertical else ax.barh(at, h, width, left=b, **one))
            ax.errorbar(*((pos, val) if vertical else (val, pos)), **({"yerr": [err_lo, err_hi]} if vertical else {"xerr": [err_lo, err_hi]}),
                        fmt="none", ecolor="black", capsize=2, linewidth=0.8)
        elif vertical:
            ax.bar(pos, heights, width, bottom=bottoms, **kw)
            ax.errorbar(pos, val, yerr=[err_lo, err_hi], fmt="none", ecolor="black", capsize=2, linewidth=0.8)
        else:
            ax.barh(pos, heights, width, left=bottoms, **kw)
            ax.errorbar(val, pos, xerr=[err_lo, err_hi], fmt="none", ecolor="black", capsize=2, linewidth=0.8)
        for at, edge, marker in open_ends:
            clipped = True
            xy = (at, edge) if vertical else (edge, at)
            ax.plot(*xy, marker=marker, color="black", markersize=5, clip_on=False)
    return clipped


def normalized_bars(rows, envs: list[str], baseline: str, emulated: set[str], title: str) -> str | None:
    """Each metric's performance relative to native (×1), one bar per environment, with the 95 %
    interval of the ratio as error bars; pale bars equivalent, pale cross-hatched unresolved (the
    cells' verdict), hatched bars emulated (TCG)."""
    others = [e for e in envs if e != baseline]
    metrics = list(dict.fromkeys(rows["metric"]))
    if not others or not metrics or "ratio" not in rows or not np.isfinite(rows["ratio"].astype(float)).any():
        return None
    items = []
    for m in metrics:
        sub = rows[rows["metric"] == m]
        items.append((m, {r.environment: (*stats.performance(r.ratio, r.ratio_low, r.ratio_high, r.better),
                                          r.verdict if isinstance(getattr(r, "verdict", None), str) else "unresolved")
                          for r in sub.itertuples() if r.environment != baseline}))
    limits = _log_limits([v for _, by_env in items for t in by_env.values() for v in t[:3]])
    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT))
    clipped = _bars(ax, items, envs, baseline, emulated, limits)
    _ratio_axis(ax, limits, baseline)
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels(metrics, rotation=20 if len(metrics) > 3 else 0, ha="right" if len(metrics) > 3 else "center",
                       fontsize=8)
    ax.set_title(title + ("; ▲▼ interval unbounded" if clipped else ""), fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _uri(fig)


def overview(items, envs: list[str], baseline: str, emulated: set[str], title: str) -> str | None:
    """The study's kind of summary figure: every workload's headline metric as performance
    relative to native, one row per (workload, metric), one bar per environment."""
    if not items or len(envs) < 2:
        return None
    limits = _log_limits([v for _, by_env in items for t in by_env.values() for v in t[:3]])
    others = [e for e in envs if e != baseline]
    fig, ax = plt.subplots(figsize=(WIDTH, 0.28 * len(items) * max(1, len(others)) ** 0.5 + 1.3))
    clipped = _bars(ax, items, envs, baseline, emulated, limits, vertical=False)
    _ratio_axis(ax, limits, baseline, vertical=False)
    ax.set_yticks(range(len(items)))
    ax.set_yticklabels([label for label, _ in items], fontsize=8)
    ax.set_ylim(len(items) - 0.5, -0.5)   # the first workload on top
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title + ("; ◀▶ interval unbounded" if clipped else ""), fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _uri(fig)


def percentile_points(rows) -> dict[str, list[tuple[float, str]]]:
    """Metrics named <prefix>p<pct> (fio's read_clat_p99_9): prefix -> [(percentile, metric)]."""
    found: dict[str, list[tuple[float, str]]] = {}
    for metric in dict.fromkeys(rows["metric"]):
        m = PERCENTILE.match(metric)
        if m:
            found.setdefault(m["prefix"], []).append((float(m["pct"].replace("_", ".")), metric))
    return {k: sorted(v) for k, v in found.items() if len(v) >= 5}


def _plain_log_axis(axis) -> None:
    """Log-axis labels as plain numbers at 1-2-5 steps (not only 10³ and 10⁴)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def latency_cdf(rows, envs: list[str], emulated: set[str], title: str) -> str | None:
    """Completion-latency distribution from the percentile metrics: the mean over repetitions of
    each percentile's latency, per environment. The percentile axis is a logit scale, so the
    tail (99 %, 99.9 %, 99.99 %) is spread out rather than pressed against 1."""
    series = percentile_points(rows)
    if not series:
        return None
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    colours = palette.colours(envs)
    fig, axes = plt.subplots(1, len(series), figsize=(WIDTH, HEIGHT + 0.6), squeeze=False)
    for ax, (prefix, points) in zip(axes[0], series.items()):
        unit = ""
        for env in envs:
            sub = rows[rows["environment"] == env].set_index("metric")
            xs, ys = [], []
            for pct, metric in points:
                if metric in sub.index and 0 < pct < 100:
                    xs.append(sub.at[metric, "mean"])
                    ys.append(pct / 100)
                    unit = sub.at[metric, "unit"]
            if xs:
                ax.plot(xs, ys, marker=".", color=colours[env], label=env_label(env, emulated),
                        linestyle="--" if env in emulated else "-")
        ax.set_xscale("log")
        _plain_log_axis(ax.xaxis)
        ax.set_yscale("logit")
        shown = [p / 100 for p, _ in points if 0 < p < 100]
        ticks = [t for t in (0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999) if min(shown) <= t <= max(shown)]
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"p{v * 100:g}"))
        ax.set_ylim(min(shown) * 0.8, 1 - (1 - max(shown)) * 0.8)
        ax.set_xlabel(f"{prefix.rstrip('_')} ({unit_label(unit)}, log)", fontsize=8)
        ax.set_ylabel("percentile of I/Os (logit)", fontsize=8)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title, fontsize=10)
    return _uri(fig)


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DASHES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)))


def sweep(rows, key: str, envs: list[str], baseline: str, emulated: set[str], title: str,
          log_y: bool = False) -> str | None:
    """A metric against its sweep parameter (Redis clients, MariaDB threads): mean with its 95 %
    confidence interval per environment; a log x axis when the points span a factor of 10, and
    a log y axis when asked (instance costs: a fork, a container and a VM are orders apart)."""
    column = f"sweep_{key}"
    if column not in rows or rows[column].nunique() < 2:
        return None
    colours = palette.colours(envs)
    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT))
    unit = rows["unit"].iloc[0]
    xs_all = rows[column].astype(float)
    for i, env in enumerate(envs):
        sub = rows[rows["environment"] == env].copy()
        sub["_x"] = sub[column].astype(float)
        sub = sub.sort_values("_x")
        if sub.empty:
            continue
        err = [sub["mean"] - sub["ci_low"], sub["ci_high"] - sub["mean"]]
        err = [np.nan_to_num(e.to_numpy(float)) for e in err]
        # each environment its own marker and dash: two that measure alike stay told apart
        ax.errorbar(sub["_x"], sub["mean"], yerr=err, marker=MARKERS[i % len(MARKERS)], capsize=3, color=colours[env],
                    label=env_label(env, emulated), linestyle=DASHES[i % len(DASHES)], markerfacecolor="none"
                    if i % 2 else colours[env], markersize=6 + (i % 3))
    if xs_all.min() > 0 and xs_all.max() / xs_all.min() >= 10:
        ax.set_xscale("log")
    ticks = sorted(xs_all.unique())
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel(key)
    ax.set_ylabel(f"{rows['metric'].iloc[0]} ({unit_label(unit)})", fontsize=8)
    from matplotlib.ticker import FuncFormatter
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 100 else f"{v:g}"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title, fontsize=10)
    if log_y:
        ax.set_yscale("log")
        _plain_log_axis(ax.yaxis)
    elif math.isfinite(ax.get_ylim()[0]):
        ax.set_ylim(bottom=0)
    return _uri(fig)


def start_cdf(rows: list[dict], emulated: set[str], title: str) -> str | None:
    """Start latency as a distribution per environment (the study's latency-CDF figure): every
    serial start, sorted, against its cumulative fraction; a log time axis, since a fork, a
    container and a VM are orders of magnitude apart. Markers and dash styles keep a series
    visible where another lies over it."""
    rows = [r for r in rows if r["start_values"]]
    if not rows:
        return None
    colours = palette.colours([r["environment"] for r in rows])
    markers = "os^vDP*X"
    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT))
    for i, r in enumerate(rows):
        xs = np.sort(np.asarray(r["start_values"], float))
        ys = np.arange(1, len(xs) + 1) / len(xs)
        ax.step(xs, ys, where="post", color=colours[r["environment"]], linestyle="--" if r["emulated"] else "-",
                marker=markers[i % len(markers)], markersize=3, label=env_label(r["environment"], emulated))
    ax.set_xscale("log")
    _plain_log_axis(ax.xaxis)
    ax.set_xlabel("seconds from the request to a first exec returning (log)", fontsize=8)
    ax.set_ylabel("fraction of starts", fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title, fontsize=10)
    return _uri(fig)


def instance_memory(rows: list[dict], emulated: set[str], title: str) -> str | None:
    """Host memory per idle instance in absolute MiB (not normalised: the host has no instance),
    horizontal bars with the 95 % interval over repetitions, each labelled with its number."""
    if not rows:
        return None
    colours = palette.colours([r["environment"] for r in rows])
    fig, ax = plt.subplots(figsize=(WIDTH, 0.45 * len(rows) + 1.2))
    for i, r in enumerate(rows):
        low, high = r["memory_low"], r["memory_high"]
        err = [[max(r["memory_mean"] - low, 0)], [max(high - r["memory_mean"], 0)]] if math.isfinite(low) else None
        ax.barh(i, r["memory_mean"], color=colours[r["environment"]], xerr=err, capsize=3,
                hatch="//" if r["emulated"] else None)
        ax.text(r["memory_mean"], i, f"  {r['memory_mean']:.3g} MiB (at {r['memory_n']})", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([env_label(r["environment"], emulated) for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("MiB per idle instance (PSS of its host processes; right is more memory)", fontsize=8)
    ax.set_xlim(0, max(r["memory_high"] if math.isfinite(r["memory_high"]) else r["memory_mean"] for r in rows) * 1.35)
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(title, fontsize=10)
    return _uri(fig)
