"""Redis: redis-server inside the environment, redis-benchmark on the host, swept over clients.

The study ran `redis-benchmark -d 50 -r 100000 -n N -t get,set` at 1 to 50 concurrent clients
against a server in the system under test; a repetition here runs that whole sweep, one
redis-benchmark per client count, so that every point of a curve comes from the same server
in the same environment. The raw text keeps the points apart with a `# clients=N` line before
each point's CSV, which is all the parser needs to tell which point a row belongs to.

redis-benchmark 7.0 hangs, instead of failing, when nothing listens on its port: the server is
checked to be listening before every point, and the sweep as a whole is bounded in time.
"""

from __future__ import annotations

import csv
import re
import time
from typing import Literal

from pydantic import Field, PositiveInt, field_validator

from ..environments.base import Environment, ExecResult
from ..errors import ToolError
from ..model import Measurement
from .base import Count, _bounded, CellContext, Params, RawOutput, Workload, dpkg_version, first_line

# redis-benchmark's -t names that give one CSV row, named as the test ("lrange" is left out: it
# gives four rows, LRANGE_100 to LRANGE_600, after an LPUSH setup row).
Test = Literal["set", "get", "incr", "lpush", "rpush", "lpop", "rpop", "sadd", "hset", "spop", "zadd",
               "zpopmin", "mset", "ping_inline", "ping_mbulk"]

MARKER = re.compile(r"^# clients=(\d+)\s*$")

# CSV columns of redis-benchmark 7 (--csv) -> metric suffix; every latency is in ms.
LATENCIES = (("avg_latency_ms", "latency_mean"), ("p50_latency_ms", "latency_p50"),
             ("p95_latency_ms", "latency_p95"), ("p99_latency_ms", "latency_p99"),
             ("max_latency_ms", "latency_max"))

# A floor on throughput, only to bound a sweep in time: an emulated VM still does thousands.
SLOWEST_REQUESTS_PER_SECOND = 1000.0


class RedisParams(Params):
    clients: list[_bounded(1, 10_000)] = Field(default=[1, 10, 50], min_length=1)  # the sweep: one point each
    requests: Count = 100000     # -n, per test and per point (times the clients, up to scale_clients)
    # Requests grow with the clients up to this many: a point then runs about as long at 50
    # clients as at 1 (the rate rises with clients until the server saturates), long enough to
    # measure rather than to sample the clock (20,000 requests at 100,000 req/s is 0.2 s, and
    # redis-benchmark's rates come out quantised: 100,000.0, 111,111.1). 1: the same -n everywhere.
    scale_clients: _bounded(1, 10_000) = 1
    data_size: _bounded(1, 512 << 20) = 50   # -d, bytes of a SET/GET value (the study's 50)
    keyspace: Count = 100000     # -r, random keys (the study's 100000)
    tests: list[Test] = Field(default=["get", "set"], min_length=1)

    def requests_at(self, clients: int) -> int:
        """-n at this point of the sweep."""
        return self.requests * min(clients, self.scale_clients)

    @field_validator("clients", "tests")
    @classmethod
    def distinct(cls, values: list) -> list:
        if len(set(values)) != len(values):
            raise ValueError("each value may appear only once")
        return values


class Redis(Workload):
    tool = "redis"
    resource = "applications"
    sweeps = ("clients",)
    programs = ("redis-server",)
    client_programs = ("redis-benchmark",)
    client_packages = ("redis-tools",)
    packages = ("redis-server",)
    server_ports = 1
    Params = RedisParams

    def timeout(self, p: RedisParams) -> float:
        return 30 + sum(10 + len(p.tests) * p.requests_at(c) / SLOWEST_REQUESTS_PER_SECOND for c in p.clients)

    def version(self, env: Environment) -> str:
        # The Debian revision too: security updates change the binary (its build= hash) but not
        # the "v=7.0.15" part. The host as a client may have only redis-tools' redis-benchmark.
        for program, package in (("redis-server", "redis-server"), ("redis-benchmark", "redis-tools")):
            r = env.exec([program, "--version"], timeout=20)
            if r.ok:
                deb = dpkg_version(env, package)
                return first_line(r.stdout) + (f" (Debian {deb})" if deb else "")
        return ""

    @staticmethod
    def server_argv(address: str, port: int, workdir: str) -> list[str]:
        # No persistence: the study measured the in-memory path, and a background save would
        # fork mid-measurement. Protected mode would refuse clients coming through NAT.
        return ["redis-server", "--bind", address, "--port", str(port), "--save", "", "--appendonly", "no",
                "--protected-mode", "no", "--daemonize", "no", "--dir", workdir]

    @staticmethod
    def client_argv(p: RedisParams, address: str, port: int, clients: int) -> list[str]:
        return ["redis-benchmark", "-h", address, "-p", str(port), "-c", str(clients), "-n", str(p.requests_at(clients)),
                "-d", str(p.data_size), "-r", str(p.keyspace), "-t", ",".join(p.tests), "--csv"]

    def run(self, ctx: CellContext) -> RawOutput:
        port = ctx.env.ports[0]
        server = ctx.env.start_server(self.server_argv(ctx.env.listen_address, port, ctx.env.workdir),
                                      log_name=f"redis-server-{ctx.label}")
        result: ExecResult | None = None
        try:
            if ctx.env.wait_listening(port, timeout=30):
                result = self._sweep(ctx, port)
        finally:
            log = server.stop()
        if result is None:
            raise ToolError(f"redis-server did not listen on port {port}: {_last_line(log) or 'no output'}")
        return RawOutput(result.stdout, result, {"server": log})

    def _sweep(self, ctx: CellContext, port: int) -> ExecResult:
        """One redis-benchmark per client count, within ctx.timeout for them all; stops at the
        first point that fails and returns what ran, that point's status deciding the whole."""
        address, public_port = ctx.env.endpoint(port)
        deadline = time.monotonic() + ctx.timeout
        text, stderr, duration = [], [], 0.0
        argv: list[str] = []
        for i, clients in enumerate(ctx.params.clients):
            if i and not ctx.env.wait_listening(port, timeout=5):
                raise ToolError(f"redis-server stopped listening on port {port} before the clients={clients} point")
            argv = ctx.env.client_command(self.client_argv(ctx.params, address, public_port, clients))
            r = ctx.client.exec(argv, max(deadline - time.monotonic(), 1.0))
            stdout = r.stdout if r.stdout.endswith("\n") or not r.stdout else r.stdout + "\n"
            text.append(f"# clients={clients}\n{stdout}")  # the marker must start a line
            if r.stderr.strip():
                stderr.append(f"# clients={clients}\n{r.stderr}")
            duration += r.duration
            if not r.ok:
                return ExecResult(argv, r.returncode, "".join(text), "".join(stderr), duration, r.timed_out)
        return ExecResult(argv, 0, "".join(text), "".join(stderr), duration)

    @staticmethod
    def parse(text: str, params: RedisParams) -> list[Measurement]:
        out: list[Measurement] = []
        points = _points(text)
        if not points:
            raise ToolError("no '# clients=N' point in the redis-benchmark output")
        for clients, lines in points:
            rows = [row for row in csv.reader(lines) if row]
            if not rows or rows[0][:2] != ["test", "rps"]:
                raise ToolError(f"no redis-benchmark CSV at clients={clients}")
            header, found = rows[0], set()
            # In the order the workload names its tests, not redis-benchmark's (SET before GET):
            # the first is the headline, and the study's is GET.
            order = list(params.tests)
            point: dict[str, list[Measurement]] = {}
            for row in rows[1:]:
                if "(needed to benchmark" in row[0]:
                    continue  # a setup step of another test, not one that was asked for
                cells = dict(zip(header, row))
                test = _test_name(cells["test"])
                found.add(test)
                mine = point.setdefault(test, [])
                try:
                    mine.append(Measurement(f"{test}_requests_per_second", float(cells["rps"]), "req/s",
                                            params={"clients": clients}))
                    mine.extend(Measurement(f"{test}_{metric}", float(cells[column]), "ms", "lower",
                                           params={"clients": clients})
                               for column, metric in LATENCIES if column in cells)
                except ValueError as e:
                    raise ToolError(f"garbled redis-benchmark value at clients={clients}: {e}") from None
            for test in sorted(point, key=lambda t: order.index(t) if t in order else len(order)):
                out.extend(point[test])
            missing = [t for t in params.tests if t not in found]
            if not found or missing:
                raise ToolError(f"no result for {', '.join(missing) or 'any test'} at clients={clients}: "
                                f"redis-benchmark stopped early")
        seen = [c for c, _ in points]
        absent = [c for c in params.clients if c not in seen]
        if absent:
            raise ToolError(f"no point for clients={', '.join(map(str, absent))} in the redis-benchmark output")
        return out


def _points(text: str) -> list[tuple[int, list[str]]]:
    """Split the sweep's text at its `# clients=N` lines: [(N, that point's lines)]."""
    points: list[tuple[int, list[str]]] = []
    for line in text.splitlines():
        m = MARKER.match(line)
        if m:
            points.append((int(m.group(1)), []))
        elif points:
            points[-1][1].append(line)
    return points


def _test_name(label: str) -> str:
    """'GET' -> 'get', 'MSET (10 keys)' -> 'mset', 'PING_INLINE' -> 'ping_inline'."""
    return re.sub(r"[^a-z0-9]+", "_", label.split(" (")[0].strip().lower()).strip("_")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
