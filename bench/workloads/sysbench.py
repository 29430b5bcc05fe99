"""sysbench's own micro-benchmarks, one `test` per catalogue entry:
  cpu     prime-number verification on every thread (events per second): pure user-space work.
  threads threads that lock a mutex, sched_yield() and unlock, in a loop (events per second):
          a system call (and often a futex wait and a context switch) every few instructions,
          so the cost of seccomp filtering, of a CPU quota, of the scheduler shows here.
  mutex   a fixed amount of work per thread on a shared array of mutexes (total time, lower is
          better): contention that ends in futex calls.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from ..environments.base import Environment
from ..errors import ToolError
from ..model import Measurement
from .base import Count, Seconds, ThreadsOrAll, _bounded, CellContext, Params, RawOutput, Workload, cpu_count, first_line


class SysbenchParams(Params):
    test: Literal["cpu", "threads", "mutex"] = "cpu"
    threads: ThreadsOrAll = 0  # 0: one per CPU of the environment
    time: Seconds = 10          # seconds (cpu, threads); mutex runs a fixed amount of work
    cpu_max_prime: _bounded(3, 10**8) = 20000  # cpu
    thread_yields: Count = 1000 # threads: yields per lock/unlock per event
    thread_locks: _bounded(1, 10**6) = 8  # threads: mutexes the threads share
    mutex_num: _bounded(1, 10**8) = 4096  # mutex: size of the mutex array
    mutex_locks: Count = 50000  # mutex: lock/unlock pairs per thread
    mutex_loops: _bounded(0, 10**9) = 10000  # mutex: empty loop iterations outside the lock



class Sysbench(Workload):
    tool = "sysbench"
    programs = ("sysbench",)
    packages = ("sysbench",)
    numa_interleave = True
    resource = "CPU"
    Params = SysbenchParams

    def timeout(self, params: SysbenchParams) -> float:
        return params.time + 60.0 if params.test != "mutex" else 300.0

    def version(self, env: Environment) -> str:
        r = env.exec(["sysbench", "--version"], timeout=20)
        return first_line(r.stdout) if r.ok else ""

    @staticmethod
    def argv(p: SysbenchParams) -> list[str]:
        argv = ["sysbench", p.test, f"--threads={p.threads}"]
        if p.test == "cpu":
            argv += [f"--time={p.time}", f"--cpu-max-prime={p.cpu_max_prime}"]
        elif p.test == "threads":
            argv += [f"--time={p.time}", f"--thread-yields={p.thread_yields}", f"--thread-locks={p.thread_locks}"]
        else:
            argv += [f"--mutex-num={p.mutex_num}", f"--mutex-locks={p.mutex_locks}",
                     f"--mutex-loops={p.mutex_loops}"]
        return [*argv, "run"]

    def run(self, ctx: CellContext) -> RawOutput:
        params = ctx.params.model_copy(update={"threads": ctx.params.threads or cpu_count(ctx.env)})
        result = ctx.env.exec(self.argv(params), ctx.timeout)
        return RawOutput(result.stdout, result)

    @staticmethod
    def parse(text: str, params: SysbenchParams) -> list[Measurement]:
        def number(pattern: str) -> float | None:
            m = re.search(pattern, text, re.MULTILINE)
            return float(m.group(1)) if m else None

        test = params.test
        total_time = number(r"^\s*total time:\s*([\d.]+)s")
        events = number(r"^\s*total number of events:\s*(\d+)")
        if test == "cpu":
            eps = number(r"^\s*events per second:\s*([\d.]+)")
            if eps is None:
                raise ToolError("no 'events per second' in sysbench's output")
            out = [Measurement("events_per_second", eps, "events/s")]
        elif total_time is None or events is None or total_time <= 0:
            raise ToolError(f"no 'total time' and 'total number of events' in sysbench {test}'s output")
        elif test == "threads":
            # sysbench 1.0 prints no rate for this test; the same ratio it prints for cpu.
            out = [Measurement("events_per_second", events / total_time, "events/s")]
        else:
            # One event per thread, each a fixed amount of work: the time is the result.
            out = [Measurement("total_time", total_time, "s", "lower")]
        for label, metric in (("avg", "latency_avg"), ("95th percentile", "latency_p95")):
            v = number(rf"^\s*{label}:\s*([\d.]+)")
            if v is not None:
                out.append(Measurement(metric, v, "ms", "lower"))
        return out
