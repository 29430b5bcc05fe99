"""webapp: a two-tier web application, a small HTTP front and Redis, measured end to end.

Two services: `redis` (redis-server) and `front` (workloads/compose/webapp/front.py, an HTTP
server of Python's standard library doing one Redis INCR per request). wrk, on the client side,
keeps `connections` HTTP connections busy for `duration` seconds and reports requests per second
and the latency distribution. Where the services run is the environment's business
(Environment.service): a Compose environment gives each its own container on a user-defined
bridge, as its compose file says; every other environment (the host, one container, one VM)
runs both in itself, which is the comparison: the same two processes, without the network
between them.

Each repetition starts both servers afresh, so Redis' counter starts at zero; it is read after
wrk stops and kept in the raw output (`# redis_counter=N`). The parser checks it: every request
wrk saw answered cost one INCR, and at most one request per connection was still in flight when
wrk stopped, so a front that answered without Redis, or a Redis that was not the front's, fails
the repetition instead of giving a number.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import PositiveInt, model_validator

from ..environments.base import Environment, ExecResult
from .. import datadir
from ..errors import ToolError
from ..model import Measurement
from .base import Threads, _bounded, CellContext, Params, RawOutput, Workload, dpkg_version, first_line
from .redis import Redis

FRONT = Path("compose") / "webapp" / "front.py"  # in the configuration folder, beside compose.yaml
# Debian's interpreter by its path, in every environment: a host's PATH may find another Python
# first (pyenv, a venv), which would not be the binary the image runs.
PYTHON = "/usr/bin/python3"
COUNTER_KEY = "hits"
COUNTER = re.compile(r"^# redis_counter=(-?\d+)\s*$", re.M)

# wrk's --latency report: "Latency   1.23ms  456.00us  12.34ms   87.65%" and "     99%    3.21ms"
_TIME = r"([\d.]+)(us|ms|s|m|h)"
LATENCY = re.compile(rf"^\s*Latency\s+{_TIME}\s+{_TIME}\s+{_TIME}\s", re.M)
PERCENTILE = re.compile(rf"^\s+(50|75|90|99)%\s+{_TIME}\s*$", re.M)
REQUESTS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", re.M)
RATE = re.compile(r"^Requests/sec:\s+([\d.]+)\s*$", re.M)
NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)", re.M)
SOCKET_ERRORS = re.compile(r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.M)
TO_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


class WebappParams(Params):
    connections: _bounded(1, 10_000) = 8    # wrk -c: HTTP connections kept open (each one request at a time)
    threads: Threads = 1        # wrk -t: the client's threads; each holds connections/threads
    duration: _bounded(1, 3600) = 5       # wrk -d, seconds of load
    timeout: _bounded(1, 3600) = 10       # wrk --timeout, seconds before a request counts as timed out

    @model_validator(mode="after")
    def threads_have_connections(self) -> "WebappParams":
        if self.threads > self.connections:
            raise ValueError("wrk needs at least one connection per thread (threads <= connections)")
        return self


class Webapp(Workload):
    tool = "webapp"
    resource = "applications"
    programs = (PYTHON, "redis-server", "redis-cli")
    client_programs = ("wrk",)
    # wrk too, so that a client placed in a container (client_environment) has it.
    packages = ("python3", "redis-server", "wrk")
    services = ("front", "redis")
    server_ports = 2  # the environment's first port is the front's, the second Redis'
    Params = WebappParams

    def timeout(self, p: WebappParams) -> float:
        return p.duration + p.timeout + 60  # servers start and stop outside wrk's own time

    def version(self, env: Environment) -> str:
        """Python and Redis where the services run; wrk where the client runs."""
        found = []
        r = env.exec([PYTHON, "--version"], timeout=20)
        if r.ok:
            deb = dpkg_version(env, "python3")
            found.append(first_line(r.stdout or r.stderr) + (f" (Debian {deb})" if deb else ""))
        r = env.exec(["redis-server", "--version"], timeout=20)
        if r.ok:
            found.append(first_line(r.stdout).split(" sha=")[0])
        deb = dpkg_version(env, "wrk")  # `wrk -v` exits 1; its package says the same, and more
        if deb:
            found.append(f"wrk {deb}")
        return "; ".join(found)

    @staticmethod
    def front_source() -> bytes:
        path = datadir.path(FRONT)
        try:
            return path.read_bytes()
        except OSError as e:
            raise ToolError(f"cannot read the web front {path}: {e.strerror}") from None

    @staticmethod
    def client_argv(p: WebappParams, url: str) -> list[str]:
        return ["wrk", "--latency", "-t", str(p.threads), "-c", str(p.connections), "-d", f"{p.duration}s",
                "--timeout", f"{p.timeout}s", url]

    def run(self, ctx: CellContext) -> RawOutput:
        front_env, redis_env = ctx.env.service("front"), ctx.env.service("redis")
        front_port, redis_port = ctx.env.ports[0], ctx.env.ports[1]
        app = f"{front_env.workdir}/front.py"
        front_env.put_file(app, self.front_source())
        logs: dict[str, str] = {}
        redis = redis_env.start_server(Redis.server_argv(redis_env.listen_address, redis_port, redis_env.workdir),
                                       log_name=f"webapp-redis-{ctx.label}")
        front = None
        try:
            if not redis_env.wait_listening(redis_port, timeout=30):
                raise ToolError(f"redis-server did not listen on port {redis_port}")
            host, port = ctx.env.service_address("redis", redis_port)
            front = front_env.start_server(
                [PYTHON, app, "--listen", front_env.listen_address, "--port", str(front_port),
                 "--redis", f"{host}:{port}", "--key", COUNTER_KEY], log_name=f"webapp-front-{ctx.label}")
            if not front_env.wait_listening(front_port, timeout=30):
                raise ToolError(f"the web front did not listen on port {front_port}")
            address, public_port = ctx.env.endpoint(front_port)
            argv = ctx.env.client_command(self.client_argv(ctx.params, f"http://{address}:{public_port}/"))
            result = ctx.client.exec(argv, ctx.timeout)
            counter = redis_env.exec(["redis-cli", "-h", "127.0.0.1", "-p", str(redis_port), "GET", COUNTER_KEY],
                                     timeout=30)
        finally:
            if front is not None:
                logs["front"] = front.stop()
            logs["redis"] = redis.stop()
        text = result.stdout if result.stdout.endswith("\n") or not result.stdout else result.stdout + "\n"
        if counter.ok:
            text += f"# redis_counter={counter.stdout.strip() or 0}\n"
        out = ExecResult(argv, result.returncode, text, result.stderr, result.duration, result.timed_out)
        return RawOutput(text, out, logs)

    @staticmethod
    def parse(text: str, params: WebappParams) -> list[Measurement]:
        rate, latency, served = RATE.search(text), LATENCY.search(text), REQUESTS.search(text)
        if not (rate and latency and served):
            raise ToolError("no wrk summary (Latency, requests in, Requests/sec) in the output")
        non_2xx = NON_2XX.search(text)
        if non_2xx:
            raise ToolError(f"{non_2xx.group(1)} responses were not 2xx: the front could not reach Redis")
        errors = SOCKET_ERRORS.search(text)
        if errors and any(int(n) for n in errors.groups()):
            raise ToolError(f"wrk saw socket errors: {errors.group(0).strip()}")
        requests = int(served.group(1))
        _check_counter(text, requests, params)
        points = {int(m.group(1)): _ms(m.group(2), m.group(3)) for m in PERCENTILE.finditer(text)}
        if set(points) != {50, 75, 90, 99}:
            raise ToolError("no latency distribution in the wrk output (it needs --latency)")
        out = [Measurement("requests_per_second", float(rate.group(1)), "req/s"),
               Measurement("latency_mean", _ms(latency.group(1), latency.group(2)), "ms", "lower")]
        out += [Measurement(f"latency_p{p}", points[p], "ms", "lower") for p in (50, 75, 90, 99)]
        out.append(Measurement("latency_max", _ms(latency.group(5), latency.group(6)), "ms", "lower"))
        return out


def _ms(value: str, unit: str) -> float:
    return float(value) * TO_MS[unit]


def _check_counter(text: str, requests: int, params: WebappParams) -> None:
    """Redis' counter against wrk's count: each answered request was one INCR, and at most one
    request per connection was in flight (answered by the front, not counted by wrk) at the end."""
    m = COUNTER.search(text)
    if m is None:
        raise ToolError("no Redis counter after the load (`# redis_counter=N`): Redis could not be read")
    counter = int(m.group(1))
    in_flight = params.connections
    if not requests <= counter <= requests + in_flight:
        raise ToolError(f"Redis counted {counter} requests, wrk {requests} answered (with up to {in_flight} "
                        f"in flight): the front did not do one Redis round trip per request")
