"""Progress of a run: which cell and repetition runs, how long so far, how long still.

The time left is estimated per cell, not per step: a netperf repetition takes 10 s, an HPL one
minutes and the same workload ten times longer in an emulated guest, so an average over all
steps would swing as the mix changes. A step is estimated from its own cell's earlier steps,
else from its workload's steps in other environments, else from the mean of all steps so far.

On a terminal a rich live bar stays at the bottom (cell, repetition, steps done of all, elapsed,
time left) with one line per finished step above it; elsewhere (a CI log, a pipe) each step is
one plain line. The bar is one line whatever the terminal's width: the step's name gives way.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
import time
from collections import defaultdict
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, ProgressColumn
from rich.table import Column
from rich.text import Text

from .text import width as terminal_width

BAR_WIDTH = (10, 30)   # the bar's narrowest and widest: it takes what the step's name leaves


class StepLike(Protocol):
    environment: str
    repetition: int  # 0 for a warm-up
    warmup: int

    @property
    def workload(self): ...


def describe(step: StepLike) -> str:
    what = f"warm-up {step.warmup}" if step.repetition == 0 else f"rep {step.repetition}"
    return f"{step.environment} · {step.workload.name} · {what}"


def shorten(description: str, width: int) -> str:
    """The description cut to width with an ellipsis, keeping its last part (the repetition)."""
    if len(description) <= width:
        return description
    head, sep, tail = description.rpartition(" · ")
    if head and len(sep + tail) + 2 <= width:
        return head[:width - len(sep + tail) - 1] + "…" + sep + tail
    return description[:width - 1] + "…"


def clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s"


class Estimate:
    """Seconds each finished step took, by cell and by workload; a guess for the ones to come."""

    def __init__(self) -> None:
        self.by_cell: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.by_workload: dict[str, list[float]] = defaultdict(list)
        self.all: list[float] = []

    def record(self, step: StepLike, seconds: float) -> None:
        self.by_cell[(step.environment, step.workload.name)].append(seconds)
        self.by_workload[step.workload.name].append(seconds)
        self.all.append(seconds)

    def guess(self, step: StepLike) -> float | None:
        for seen in (self.by_cell.get((step.environment, step.workload.name)),
                     self.by_workload.get(step.workload.name), self.all):
            if seen:
                return sum(seen) / len(seen)
        return None  # nothing finished yet: no honest guess

    def left(self, steps: list[StepLike]) -> float | None:
        guesses = [self.guess(s) for s in steps]
        return None if any(g is None for g in guesses) else sum(guesses)


def _times_text(elapsed: str, left: str) -> str:
    return f"{elapsed} elapsed, {left} left"


class _TimesColumn(ProgressColumn):
    """Elapsed and left, computed at every refresh, so that they move during a long step."""

    def __init__(self, progress: "Progress"):
        super().__init__(table_column=Column(no_wrap=True))
        self.progress = progress

    def render(self, task) -> Text:
        return Text(_times_text(*self.progress._times()))


class _StepColumn(ProgressColumn):
    """The running step, cut with an ellipsis to what the terminal leaves beside the narrowest
    bar, the count and the times; the bar then takes what is left, up to its widest. A bar that
    wraps onto a second line is redrawn below itself at every refresh and floods the terminal."""

    def __init__(self, progress: "Progress", bar: BarColumn):
        super().__init__(table_column=Column(no_wrap=True))
        self.progress = progress
        self.bar = bar

    def render(self, task) -> Text:
        columns = shutil.get_terminal_size((self.progress.console.width, 24)).columns - 1  # not the last column
        count = 2 * len(str(int(task.total or 0))) + 1   # MofNCompleteColumn pads done to the total's width
        others = count + len(_times_text(*self.progress._times())) + 3  # 3: the spaces between the 4 columns
        text = Text(shorten(task.description, max(1, columns - others - BAR_WIDTH[0])), no_wrap=True)
        # Rendered before the bar in the same row: the bar's width for this refresh is set here.
        self.bar.bar_width = max(BAR_WIDTH[0], min(BAR_WIDTH[1], columns - others - len(text)))
        return text


class Progress:
    """begin(step) / end(outcome) around every step; extend() when adaptive rounds add steps."""

    def __init__(self, steps: list[StepLike], stream: TextIO = sys.stderr, live: bool | None = None):
        self.pending = list(steps)
        self.total = len(steps)
        self.done = 0
        self.start = time.monotonic()
        self.estimate = Estimate()
        self.stream = stream
        self._current: StepLike | None = None
        self._column = 0  # where a plain line's outcome begins
        self._step_start = 0.0
        self.console = Console(file=stream, stderr=stream is sys.stderr)
        self._bar: RichProgress | None = None
        if live if live is not None else self.console.is_terminal:
            # The count is MofNCompleteColumn's alone: the step's description does not repeat it.
            bar = BarColumn(bar_width=BAR_WIDTH[0])
            self._bar = RichProgress(_StepColumn(self, bar), bar, MofNCompleteColumn(), _TimesColumn(self),
                                     console=self.console, transient=True)
            self._task = self._bar.add_task("starting", total=self.total)

    def __enter__(self) -> "Progress":
        if self._bar:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar:
            self._bar.stop()

    def extend(self, steps: list[StepLike]) -> None:
        self.pending += steps
        self.total += len(steps)
        if self._bar:
            self._bar.update(self._task, total=self.total)

    def _times(self) -> tuple[str, str]:
        now = time.monotonic()
        left = self.estimate.left(self.pending)
        if left is not None and self._current is not None:  # the step running now, its rest
            current = self.estimate.guess(self._current)
            left += max(0.0, (current or 0.0) - (now - self._step_start))
        return clock(now - self.start), "?" if left is None else "~" + clock(left)

    def begin(self, step: StepLike) -> None:
        self._current, self._step_start = step, time.monotonic()
        if step in self.pending:
            self.pending.remove(step)
        if self._bar:
            self._bar.update(self._task, description=describe(step))
        else:
            label = f"[{self.done + 1:>{len(str(self.total))}}/{self.total}] {describe(step)}"
            self._column = len(label) + 5
            print(f"{label} ... ", end="", file=self.stream, flush=True)

    def end(self, outcome: str) -> None:
        step, self._current = self._current, None
        if step is not None:
            self.estimate.record(step, time.monotonic() - self._step_start)
        self.done += 1
        elapsed, left = self._times()
        if self._bar:
            self._bar.console.print(f"{describe(step)}: {outcome}", highlight=False, markup=False)
            self._bar.update(self._task, completed=self.done)
        else:
            # A log is read at 100 columns too: what does not fit after the step's name goes on
            # indented lines of its own, whole (a failure's reason is never cut).
            rest = f"{outcome}  [{_times_text(elapsed, left)}]"
            columns = terminal_width()
            if self._column + len(rest) > columns:
                rest = "\n" + textwrap.fill(rest, columns, initial_indent="    ", subsequent_indent="    ",
                                            break_long_words=False, break_on_hyphens=False)
            print(rest, file=self.stream, flush=True)
