"""sysbench cpu: prime-number verification on every thread, events per second."""

from __future__ import annotations

import re
from typing import Any

from ..environments import Environment
from ..errors import ToolError
from ..model import Measurement
from pydantic import Field

from .base import CellContext, Params, RawOutput, Workload, cpu_count, first_line


class SysbenchCpuParams(Params):
    threads: int = Field(default=0, ge=0)  # 0: one per CPU of the environment
    time: int = 10              # seconds
    cpu_max_prime: int = 20000


class SysbenchCpu(Workload):
    tool = "sysbench"
    programs = ("sysbench",)
    packages = ("sysbench",)
    Params = SysbenchCpuParams

    def timeout(self, params: dict[str, Any]) -> float:
        return params["time"] + 60.0

    def version(self, env: Environment) -> str:
        r = env.exec(["sysbench", "--version"], timeout=20)
        return first_line(r.stdout) if r.ok else ""

    @staticmethod
    def argv(params: dict[str, Any]) -> list[str]:
        p = SysbenchCpuParams(**params)
        return ["sysbench", "cpu", f"--threads={p.threads}", f"--time={p.time}",
                f"--cpu-max-prime={p.cpu_max_prime}", "run"]

    def run(self, ctx: CellContext) -> RawOutput:
        params = {**ctx.params, "threads": ctx.params["threads"] or cpu_count(ctx.env)}
        result = ctx.env.exec(self.argv(params), ctx.timeout)
        return RawOutput(result.stdout, result)

    @staticmethod
    def parse(text: str, params: dict[str, Any]) -> list[Measurement]:
        def number(pattern: str) -> float | None:
            m = re.search(pattern, text, re.MULTILINE)
            return float(m.group(1)) if m else None

        eps = number(r"^\s*events per second:\s*([\d.]+)")
        if eps is None:
            raise ToolError("no 'events per second' in sysbench's output")
        out = [Measurement("events_per_second", eps, "events/s")]
        for label, metric in (("avg", "latency_avg"), ("95th percentile", "latency_p95")):
            v = number(rf"^\s*{label}:\s*([\d.]+)")
            if v is not None:
                out.append(Measurement(metric, v, "ms", "lower"))
        return out
