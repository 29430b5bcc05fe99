"""The report's figures, drawn with matplotlib (Agg) and returned as PNG data URIs, so that the
HTML stays one self-contained file.

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

from ..parallel import pmap  # noqa: E402

WIDTH, HEIGHT, DPI = 8.0, 3.4, 96
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
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _draw(job):
    name, args = job
    return globals()[name](*args)


def draw_all(jobs: list[tuple[str, tuple]]) -> list[str | None]:
    """Each (function name, arguments) drawn, in order, in worker processes (bench.parallel):
    the figures are independent, and the same drawn here or there."""
    return pmap(_draw, jobs)


def env_label(env: str, emulated: set[str]) -> str:
    return f"{env} (TCG)" if env in emulated else env


def _colours(envs: list[str]) -> dict[str, str]:
    palette = plt.get_cmap("tab10").colors
    return {e: matplotlib.colors.to_hex(palette[i % len(palette)]) for i, e in enumerate(envs)}


def normalized_bars(rows, envs: list[str], baseline: str, emulated: set[str], title: str) -> str | None:
    """Each metric's mean relative to native (native = 1), one bar per environment, with the
    95 % Fieller interval of the ratio as error bars; hatched bars are emulated (TCG)."""
    others = [e for e in envs if e != baseline]
    metrics = list(dict.fromkeys(rows["metric"]))
    if not others or not metrics or "ratio" not in rows or not np.isfinite(rows["ratio"].astype(float)).any():
        return None
    colours = _colours(envs)
    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT))
    width = 0.8 / len(others)
    for i, env in enumerate(others):
        sub = rows[rows["environment"] == env].set_index("metric")
        x, y, lo, hi = [], [], [], []
        for j, m in enumerate(metrics):
            if m not in sub.index or not np.isfinite(sub.at[m, "ratio"]):
                continue
            r, a, b = sub.at[m, "ratio"], sub.at[m, "ratio_low"], sub.at[m, "ratio_high"]
            x.append(j - 0.4 + width * (i + 0.5))
            y.append(r)
            # An unbounded interval (native's mean not clearly away from 0) is drawn to the axis.
            lo.append(r - a if np.isfinite(a) else r)
            hi.append(b - r if np.isfinite(b) else r)
        if x:
            ax.bar(x, y, width, yerr=[lo, hi], capsize=3, color=colours[env], label=env_label(env, emulated),
                   hatch="//" if env in emulated else None, edgecolor="black", linewidth=0.4)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels(metrics, rotation=20 if len(metrics) > 3 else 0, ha="right" if len(metrics) > 3 else "center",
                       fontsize=8)
    ax.set_ylabel(f"relative to {baseline} (= 1)")
    ax.set_title(title, fontsize=10)
    top = max([1.2, *[float(v) for v in rows["ratio_high"] if np.isfinite(v)]])
    ax.set_ylim(0, min(top * 1.05, 3.0))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _uri(fig)


def percentile_points(rows) -> dict[str, list[tuple[float, str]]]:
    """Metrics named <prefix>p<pct> (fio's read_clat_p99_9): prefix -> [(percentile, metric)]."""
    found: dict[str, list[tuple[float, str]]] = {}
    for metric in dict.fromkeys(rows["metric"]):
        m = PERCENTILE.match(metric)
        if m:
            found.setdefault(m["prefix"], []).append((float(m["pct"].replace("_", ".")), metric))
    return {k: sorted(v) for k, v in found.items() if len(v) >= 5}


def latency_cdf(rows, envs: list[str], emulated: set[str], title: str) -> str | None:
    """Completion-latency CDF from the percentile metrics: the mean over repetitions of each
    percentile's latency, per environment (log latency axis, as fio's spread is wide)."""
    series = percentile_points(rows)
    if not series:
        return None
    colours = _colours(envs)
    fig, axes = plt.subplots(1, len(series), figsize=(WIDTH, HEIGHT), squeeze=False)
    for ax, (prefix, points) in zip(axes[0], series.items()):
        unit = ""
        for env in envs:
            sub = rows[rows["environment"] == env].set_index("metric")
            xs, ys = [], []
            for pct, metric in points:
                if metric in sub.index:
                    xs.append(sub.at[metric, "mean"])
                    ys.append(pct / 100)
                    unit = sub.at[metric, "unit"]
            if xs:
                ax.plot(xs, ys, marker=".", drawstyle="steps-post", color=colours[env],
                        label=env_label(env, emulated), linestyle="--" if env in emulated else "-")
        ax.set_xscale("log")
        ax.set_xlabel(f"{prefix.rstrip('_')} ({unit})")
        ax.set_ylabel("fraction of I/Os completed")
        ax.set_ylim(0, 1.01)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=10)
    return _uri(fig)


def sweep(rows, key: str, envs: list[str], baseline: str, emulated: set[str], title: str) -> str | None:
    """A metric against its sweep parameter (Redis clients, MariaDB threads): mean with its 95 %
    confidence interval per environment, and on a second axis each environment's % loss vs native."""
    column = f"sweep_{key}"
    if column not in rows or rows[column].nunique() < 2:
        return None
    colours = _colours(envs)
    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT))
    loss = ax.twinx()
    unit = rows["unit"].iloc[0]
    better = rows["better"].iloc[0]
    for env in envs:
        sub = rows[rows["environment"] == env].copy()
        sub["_x"] = sub[column].astype(float)
        sub = sub.sort_values("_x")
        if sub.empty:
            continue
        err = [sub["mean"] - sub["ci_low"], sub["ci_high"] - sub["mean"]]
        err = [np.nan_to_num(e.to_numpy(float)) for e in err]
        ax.errorbar(sub["_x"], sub["mean"], yerr=err, marker="o", capsize=3, color=colours[env],
                    label=env_label(env, emulated), linestyle="--" if env in emulated else "-")
        if env != baseline and "overhead_pct" in sub:
            loss.plot(sub["_x"], sub["overhead_pct"], marker="x", linestyle=":", color=colours[env], alpha=0.8)
    ax.set_xlabel(key)
    ax.set_ylabel(f"{rows['metric'].iloc[0]} ({unit})")
    loss.set_ylabel(f"% {'loss' if better == 'higher' else 'increase'} vs {baseline} (dotted)")
    loss.axhline(0, color="grey", linewidth=0.5, linestyle=":")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.12, 1.0))
    ax.set_title(title, fontsize=10)
    if math.isfinite(ax.get_ylim()[0]):
        ax.set_ylim(bottom=0)
    return _uri(fig)
