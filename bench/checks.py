"""A check of `bench doctor`: one line of what this machine can do and what may spoil its
numbers. Environment kinds give their own (bench/environments/*); doctor.py adds the machine's."""

from __future__ import annotations

import dataclasses

OK, WARN, FAIL = "OK", "WARN", "FAIL"


@dataclasses.dataclass(frozen=True)
class Check:
    group: str          # environments, image, tools, noise
    name: str
    status: str         # OK, WARN or FAIL
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f" -> {self.fix}" if self.fix and self.status != OK else ""
        return f"{self.status:<4}  {self.name:<22} {self.detail}{fix}"
