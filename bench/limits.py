"""The limits of every numeric flag, said once, here: the command line's argparse types are made
from them (bench/cli), and the library (plan.resolve, compare.compare) holds a value given in
code (a notebook, a test) to the same ones, so that the two never disagree on what a flag takes."""

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
    exclusive: bool = False   # neither end itself: a percentage strictly between 0 and 100

    def __str__(self) -> str:
        what = "a whole number" if self.kind is int else "a number"
        if self.exclusive:
            return f"{what} above {self.low:g} and below {self.high:g}"
        return f"{what} from {self.low:g} to {self.high:g}"

    def holds(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not float(value).is_integer():
            return False
        if self.exclusive:
            return math.isfinite(value) and self.low < value < self.high
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


# bench run
REPETITIONS = Limit("--reps", int, 1, 1000)
MAX_REPS = Limit("--max-reps", int, 1, 1000)
TARGET_CI = Limit("--target-ci", float, 0, 100, exclusive=True)   # ± this % of the mean
SEED = Limit("--seed", int, 0, 2**63 - 1)
# bench compare: the smallest worse-direction change of a headline metric counted as a regression, in %
THRESHOLD = Limit("--threshold", float, 0, 1000)
