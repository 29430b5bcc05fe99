"""The limits of a numeric setting, said once: the command line's argparse type is made from them
(bench/cli), and the library checks a value given in code (a notebook, a test) against the same
ones, so that the two can never disagree on what a flag accepts."""

from __future__ import annotations

import dataclasses
import math

from .errors import BenchError


@dataclasses.dataclass(frozen=True)
class Limit:
    flag: str      # the command line's name of the setting, which every message says
    kind: type     # int (a whole number) or float (a finite number)
    low: float
    high: float

    def __str__(self) -> str:
        what = "a whole number" if self.kind is int else "a number"
        return f"{what} from {self.low:g} to {self.high:g}"

    def holds(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not float(value).is_integer():
            return False
        return math.isfinite(value) and self.low <= value <= self.high

    def parse(self, text: str) -> int | float:
        """The value a command line's text gives; ValueError saying the limits otherwise
        (float() alone takes "nan" and "inf", int() does not take "1e3": neither is asked)."""
        try:
            value = self.kind(text)
        except ValueError:
            value = None
        if value is None or not self.holds(value):
            raise ValueError(f"{self}, not {text[:30]!r}")
        return value

    def check(self, value: int | float | None) -> None:
        """A value given in code (None: not given). Raises BenchError as the command line says it."""
        if value is not None and not self.holds(value):
            raise BenchError(f"{self.flag}: {self}, not {value!r}")
