"""netperf request/response: netserver inside the environment, netperf on the host.

The client crosses the environment's network path (loopback for the host, NAT or the host
stack for Docker, virtio-net for a VM), which is the point of the measurement. netperf opens a
second (data) connection besides its control connection; its port is fixed with `-P ,PORT`
so that an environment can publish it under the same number.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from ..environments import Environment
from ..errors import ToolError
from ..model import Measurement
from .base import CellContext, Params, RawOutput, Workload, first_line

SELECTORS = ("THROUGHPUT,THROUGHPUT_UNITS,MEAN_LATENCY,STDDEV_LATENCY,MIN_LATENCY,P50_LATENCY,"
             "P90_LATENCY,P99_LATENCY,MAX_LATENCY,REQUEST_SIZE,RESPONSE_SIZE,ELAPSED_TIME,PROTOCOL")


class NetperfParams(Params):
    test: Literal["TCP_RR", "UDP_RR"] = "TCP_RR"
    length: int = 10              # seconds
    request_size: int = 100       # the study's -r 100,200
    response_size: int = 200


class Netperf(Workload):
    tool = "netperf"
    programs = ("netserver",)
    packages = ("netperf",)
    client_programs = ("netperf",)
    server_ports = 2              # control, data
    Params = NetperfParams

    def timeout(self, params: dict[str, Any]) -> float:
        return params["length"] + 60.0

    def version(self, env: Environment) -> str:
        r = env.exec(["netserver", "-V"], timeout=20)
        return first_line(r.stdout + r.stderr) if r.returncode is not None else ""

    @staticmethod
    def client_argv(params: dict[str, Any], address: str, control: int, data: int) -> list[str]:
        p = NetperfParams(**params)
        return ["netperf", "-H", address, "-p", str(control), "-t", p.test, "-l", str(p.length), "-4",
                "--", "-r", f"{p.request_size},{p.response_size}", "-P", f",{data}", "-k", SELECTORS]

    def run(self, ctx: CellContext) -> RawOutput:
        control, data = ctx.env.ports[:2]
        server = ctx.env.start_server(
            ["netserver", "-D", "-4", "-L", ctx.env.listen_address, "-p", str(control)],
            log_name=f"netserver-{ctx.label}")
        try:
            if not ctx.env.wait_listening(control, timeout=30):
                raise ToolError(f"netserver did not listen on port {control}: {server.stop().strip()}")
            address, port = ctx.env.endpoint(control)
            result = ctx.client.exec(self.client_argv(ctx.params, address, port, ctx.env.endpoint(data)[1]),
                                     ctx.timeout)
        finally:
            log = server.stop()
        return RawOutput(result.stdout, result, {"server": log})

    @staticmethod
    def parse(text: str, params: dict[str, Any]) -> list[Measurement]:
        kv = dict(re.findall(r"^([A-Z0-9_]+)=(.*)$", text, re.MULTILINE))
        if "THROUGHPUT" not in kv:
            raise ToolError("no THROUGHPUT in netperf's output")
        try:
            out = [Measurement("transactions_per_second", float(kv["THROUGHPUT"]), "trans/s")]
            for key, metric in (("MEAN_LATENCY", "latency_mean"), ("P50_LATENCY", "latency_p50"),
                                ("P90_LATENCY", "latency_p90"), ("P99_LATENCY", "latency_p99")):
                if key in kv:
                    out.append(Measurement(metric, float(kv[key]), "us", "lower"))
        except ValueError as e:
            raise ToolError(f"garbled netperf value: {e}") from None
        if kv.get("THROUGHPUT_UNITS", "Trans/s") != "Trans/s":
            raise ToolError(f"unexpected netperf unit {kv['THROUGHPUT_UNITS']!r} for a request/response test")
        return out
