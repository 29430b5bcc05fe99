"""A figure as inline SVG: the few marks the report's figures need (axes, bars, lines, error
bars, a legend), written as text.

Why not an image: the report's figures are drawn from the summary (a few hundred numbers),
and written as SVG they cost milliseconds instead of matplotlib's half a second each; they are
vectors, sharp in print at any size; and every mark carries its numbers in a <title>, which a
browser shows on hover. No script, no font file: the page stays one self-contained file that
works offline.
"""

from __future__ import annotations

import itertools
import math

from markupsafe import Markup, escape

FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"'
CHAR = 0.6   # a character's width in ems, roughly (for the layout of labels)
_ids = itertools.count(1)


def text_width(text: str, size: float) -> float:
    return len(text) * size * CHAR


def fmt(v: float) -> str:
    """A number in a hover text as the tables write it: 4 significant digits, thousands grouped."""
    from .numbers import num

    if v is None or not math.isfinite(v):
        return "unbounded"
    return num(v)


class Figure:
    """An SVG canvas of width x height px; marks are added in drawing order."""

    def __init__(self, width: float, height: float, title: str):
        self.width, self.height = width, height
        self.parts: list[str] = []
        self.id = f"f{next(_ids)}"
        self.title = title
        self.hatches: set[str] = set()

    def hatch(self, kind: str) -> str:
        """A fill of black lines over a bar: '//' (emulated) or 'xx' (unresolved)."""
        self.hatches.add(kind)
        return f"url(#{self.id}-{'d' if kind == '//' else 'x'})"

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def text(self, x, y, s, size=11, anchor="start", weight="normal", rotate=None, colour="#222", baseline="auto"):
        turn = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate else ""
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
                 f'fill="{colour}" dominant-baseline="{baseline}"{turn}>{escape(s)}</text>')

    def line(self, x1, y1, x2, y2, colour="#000", width=1.0, dash=None, opacity=1.0):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        o = f' stroke-opacity="{opacity}"' if opacity != 1.0 else ""
        self.add(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
                 f'stroke-width="{width}"{d}{o}/>')

    def rect(self, x, y, w, h, fill, opacity=1.0, stroke=None, tip=None, hatch=None):
        if w < 0:
            x, w = x + w, -w
        if h < 0:
            y, h = y + h, -h
        edge = f' stroke="{stroke}" stroke-width="0.5"' if stroke else ""
        shape = (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0.5):.1f}" height="{max(h, 0.5):.1f}" fill="{fill}" '
                 f'fill-opacity="{opacity}"{edge}/>')
        if hatch:
            shape += (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0.5):.1f}" height="{max(h, 0.5):.1f}" '
                      f'fill="{self.hatch(hatch)}"/>')
        self.add(f"<g>{_tip(tip)}{shape}</g>" if tip else shape)

    def path(self, points, colour, width=1.5, dash=None, tip=None):
        if len(points) < 2:
            return
        d = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="{width}"{dashes}>{_tip(tip)}</path>')

    def marker(self, x, y, shape, colour, size=4.0, filled=True, tip=None):
        fill = colour if filled else "#fff"
        attrs = f'fill="{fill}" stroke="{colour}" stroke-width="1.2"'
        if shape == "s":
            mark = f'<rect x="{x - size:.1f}" y="{y - size:.1f}" width="{2 * size:.1f}" height="{2 * size:.1f}" {attrs}/>'
        elif shape in ("^", "v", "D", "<", ">"):
            pts = {"^": ((0, -1.2), (1.1, 0.8), (-1.1, 0.8)), "v": ((0, 1.2), (1.1, -0.8), (-1.1, -0.8)),
                   "D": ((0, -1.3), (1.1, 0), (0, 1.3), (-1.1, 0)), "<": ((-1.2, 0), (0.8, -1.1), (0.8, 1.1)),
                   ">": ((1.2, 0), (-0.8, -1.1), (-0.8, 1.1))}[shape]
            mark = f'<polygon points="{" ".join(f"{x + a * size:.1f},{y + b * size:.1f}" for a, b in pts)}" {attrs}/>'
        else:
            mark = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size:.1f}" {attrs}/>'
        self.add(f"<g>{_tip(tip)}{mark}</g>" if tip else mark)

    def legend(self, x, y, entries, size=10):
        """entries: (label, colour, kind) with kind 'bar', 'line' or a dash pattern."""
        for i, (label, colour, kind) in enumerate(entries):
            at = y + i * (size + 5)
            if kind == "bar":
                self.rect(x, at - size + 2, size, size - 1, colour, stroke="#000")
            else:
                self.line(x - 2, at - size / 2 + 1, x + size + 2, at - size / 2 + 1, colour, 1.8,
                          dash=None if kind == "line" else kind)
            self.text(x + size + 5, at, label, size)

    def markup(self) -> Markup:
        defs = ""
        if self.hatches:
            defs = "<defs>" + "".join(
                f'<pattern id="{self.id}-{k}" width="6" height="6" patternUnits="userSpaceOnUse" '
                f'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#000" stroke-width="0.7"/>'
                + ('<line x1="0" y1="3" x2="6" y2="3" stroke="#000" stroke-width="0.7"/>' if k == "x" else "")
                + "</pattern>" for k in sorted("d" if h == "//" else "x" for h in self.hatches)) + "</defs>"
        return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.width:.0f} {self.height:.0f}" '
                      f'width="{self.width:.0f}" height="{self.height:.0f}" role="img" {FONT}>'
                      f"<title>{escape(self.title)}</title>{defs}{''.join(self.parts)}</svg>")


def _tip(tip) -> str:
    return f"<title>{escape(tip)}</title>" if tip else ""


class Axis:
    """A linear or log mapping of data values onto pixels [a, b]."""

    def __init__(self, low: float, high: float, a: float, b: float, log: bool = False):
        self.low, self.high, self.a, self.b, self.log = low, high, a, b, log
        if log:
            self._l, self._h = math.log(low), math.log(high)
        else:
            self._l, self._h = low, high
        if self._h == self._l:
            self._h = self._l + 1

    def __call__(self, v: float) -> float:
        v = min(max(v, self.low), self.high)
        t = math.log(v) if self.log else v
        return self.a + (t - self._l) / (self._h - self._l) * (self.b - self.a)


def logit_axis(low: float, high: float, a: float, b: float):
    """A logit mapping of fractions (0, 1) onto pixels: the tail spread out."""
    def f(p: float) -> float:
        return math.log(p / (1 - p))
    lo, hi = f(low), f(high)
    return lambda p: a + (f(min(max(p, low), high)) - lo) / (hi - lo) * (b - a)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round linear ticks from low to high."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    step = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(step))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= step), default=magnitude * 10)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks within [low, high] on a log axis."""
    out = []
    for e in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0 ** e
            if low <= v <= high:
                out.append(v)
    return out


def tick_label(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:g}"
