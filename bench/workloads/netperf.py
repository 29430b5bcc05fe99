"""netperf: netserver inside the environment, netperf on the host.

The client crosses the environment's network path (loopback for the host, NAT or the host
stack for Docker, virtio-net for a VM), which is the point of the measurement. netperf opens a
second (data) connection besides its TCP control connection: TCP, or UDP for UDP_RR. Its port
is fixed with `-P ,PORT` so that an environment can publish it under the same number.
netserver's `-L` binds only its control socket: the data socket's listen address follows the
client's test-specific `-H` (without it, netserver listens on 0.0.0.0, open to the lab's network
where the server shares the host's stack). So the client names the data connection's address
(`-- -H`) wherever the server listens on a given address, and its own local address (`-- -L`)
when it reaches the server on loopback: a UDP_RR client's socket is otherwise bound to 0.0.0.0.

Two kinds of test:
- request/response (TCP_RR, UDP_RR, the study's `-r 100,200`): transactions/s and latency;
- bulk transfer (TCP_STREAM host -> environment, TCP_MAERTS environment -> host; the study's
  nuttcp with one stream and 4 MiB socket buffers): Mbit/s, and the study's CPU cost per byte.
  That cost is the HOST's busy CPU time during the transfer, counted machine-wide around the
  client, because the host runs both ends (a VM's server runs in QEMU threads). With a client
  on another host (--client-host) it is still THIS host's CPU time: the server's side only
  (netserver, NAT, QEMU, the NIC's interrupts), not the client's. run() appends the counters
  to netperf's output as BENCH_HOST_* lines so that parse() stays pure.
"""

from __future__ import annotations

import ipaddress
import os
import re
import time
from typing import Any, Literal

from pydantic import Field, model_validator

from .. import hostcpu
from ..environments.base import Environment
from ..errors import ToolError
from ..model import Measurement
from .base import Bytes, _bounded, CellContext, Params, RawOutput, Workload, first_line

RR_SELECTORS = ("THROUGHPUT,THROUGHPUT_UNITS,MEAN_LATENCY,STDDEV_LATENCY,MIN_LATENCY,P50_LATENCY,"
                "P90_LATENCY,P99_LATENCY,MAX_LATENCY,REQUEST_SIZE,RESPONSE_SIZE,ELAPSED_TIME,PROTOCOL")
# The sizes each side really used (Linux doubles a requested socket buffer) and the bytes
# each side counted, kept in the raw output to check a run by.
STREAM_SELECTORS = ("THROUGHPUT,THROUGHPUT_UNITS,ELAPSED_TIME,PROTOCOL,DIRECTION,LOCAL_SEND_SIZE,"
                    "REMOTE_SEND_SIZE,LSS_SIZE_END,LSR_SIZE_END,RSS_SIZE_END,RSR_SIZE_END,"
                    "LOCAL_BYTES_SENT,LOCAL_BYTES_RECVD,REMOTE_BYTES_SENT,REMOTE_BYTES_RECVD")

RR_TESTS = ("TCP_RR", "UDP_RR")
STREAM_TESTS = ("TCP_STREAM", "TCP_MAERTS")
RR_DEFAULTS = {"request_size": 100, "response_size": 200}          # the study's -r 100,200
STREAM_DEFAULTS = {"send_size": 65536, "socket_buffer": 4 << 20}   # nuttcp's 64 KiB, 4 MiB buffers

# Lines run() appends to netperf's output; netperf itself never prints the BENCH_ prefix.
BUSY, WALL, CPUS, MHZ = ("BENCH_HOST_CPU_BUSY_SECONDS", "BENCH_HOST_CPU_WALL_SECONDS",
                         "BENCH_HOST_CPUS", "BENCH_HOST_CPU_MHZ")


class NetperfParams(Params):
    test: Literal["TCP_RR", "UDP_RR", "TCP_STREAM", "TCP_MAERTS"] = "TCP_RR"
    length: _bounded(1, 3600) = 10                 # seconds
    # request/response tests only (default 100 and 200 bytes there, None for streams)
    request_size: Bytes | None = None
    response_size: Bytes | None = None
    # stream tests only (default 64 KiB and 4 MiB there, None for request/response)
    send_size: Bytes | None = None      # bytes per send() of the sender
    socket_buffer: Bytes | None = None  # bytes, -s and -S: both ends

    @model_validator(mode="before")
    @classmethod
    def sizes_fit_the_test(cls, data: Any) -> Any:
        """A size of the other kind of test is a mistake in the catalogue, not something to
        ignore quietly; the own kind's sizes get the study's defaults."""
        test = data.get("test", "TCP_RR") if isinstance(data, dict) else None
        if test not in RR_TESTS + STREAM_TESTS:
            return data  # the field's own check names the mistake
        rr = test in RR_TESTS
        own, other = (RR_DEFAULTS, STREAM_DEFAULTS) if rr else (STREAM_DEFAULTS, RR_DEFAULTS)
        wrong = [k for k in other if data.get(k) is not None]
        if wrong:
            kinds = " and ".join(STREAM_TESTS if rr else RR_TESTS)
            raise ValueError(f"{', '.join(wrong)} is for {kinds} only, not {test}")
        return {**data, **{k: v for k, v in own.items() if data.get(k) is None}}


class Netperf(Workload):
    tool = "netperf"
    # A request/response test's rate is one round trip after another: latency. A stream's bits
    # per second and the CPU it costs per byte: throughput.
    resource = "network latency"
    metric_resources = {"throughput": "network throughput", "cpu_ns_per_byte": "network throughput",
                        "cycles_per_byte": "network throughput"}
    programs = ("netserver",)
    packages = ("netperf",)
    client_programs = ("netperf",)
    client_packages = ("netperf",)
    server_ports = 2              # control, data
    Params = NetperfParams

    def timeout(self, params: NetperfParams) -> float:
        return params.length + 60.0

    def version(self, env: Environment) -> str:
        r = env.exec(["netserver", "-V"], timeout=20)
        return first_line(r.stdout + r.stderr) if r.returncode is not None else ""

    @staticmethod
    def client_argv(p: NetperfParams, address: str, control: int, data: int,
                    server_binds: bool = False) -> list[str]:
        """server_binds: the server listens on `address` itself (not on a wildcard of a
        namespace of its own), so its data socket must be bound there too."""
        argv = ["netperf", "-H", address, "-p", str(control), "-t", p.test, "-l", str(p.length), "-4", "--"]
        bind = (["-H", address] if server_binds else []) + (["-L", address] if _loopback(address) else [])
        if p.test in RR_TESTS:
            return [*argv, "-r", f"{p.request_size},{p.response_size}", "-P", f",{data}", "-k", RR_SELECTORS, *bind]
        # -m sets netperf's send size, `-m ,N` netserver's: the sender's, whichever way data flows.
        send = str(p.send_size) if p.test == "TCP_STREAM" else f",{p.send_size}"
        return [*argv, "-s", str(p.socket_buffer), "-S", str(p.socket_buffer), "-m", send,
                "-P", f",{data}", "-k", STREAM_SELECTORS, *bind]

    def run(self, ctx: CellContext) -> RawOutput:
        control, data = ctx.env.ports[:2]
        stream = ctx.params.test in STREAM_TESTS
        server = ctx.env.start_server(
            ["netserver", "-D", "-4", "-L", ctx.env.listen_address, "-p", str(control)],
            log_name=f"netserver-{ctx.label}")
        try:
            if not ctx.env.wait_listening(control, timeout=30):
                raise ToolError(f"netserver did not listen on port {control}: {server.stop().strip()}")
            address, port = ctx.env.endpoint(control)
            binds = ctx.env.listen_address != "0.0.0.0"
            if binds and address != ctx.env.listen_address:
                raise ToolError(f"netserver listens on {ctx.env.listen_address} but is reached at {address}: "
                                f"its data socket cannot be bound to both")
            argv = ctx.env.client_command(self.client_argv(ctx.params, address, port, ctx.env.endpoint(data)[1],
                                                           server_binds=binds))
            # Counted right around the client: netserver forks its test child only when the
            # client asks, so the transfer (with netperf's setup and teardown, a few ms) is what
            # this window holds, plus whatever else the host runs: measure on a quiet host.
            before, start = hostcpu.cpu_times(), time.monotonic()
            result = ctx.client.exec(argv, ctx.timeout)
            after, wall = hostcpu.cpu_times(), time.monotonic() - start
        finally:
            log = server.stop()
        text = result.stdout
        if stream:
            text += "" if text.endswith("\n") or not text else "\n"
            text += host_cpu_lines(after.busy - before.busy, wall, hostcpu.mean_mhz())
        return RawOutput(text, result, {"server": log})

    @staticmethod
    def parse(text: str, params: NetperfParams) -> list[Measurement]:
        # The output says which test it was (its units); params are not needed to read it.
        kv = dict(re.findall(r"^([A-Z0-9_]+)=(.*)$", text, re.MULTILINE))
        if "THROUGHPUT" not in kv:
            raise ToolError("no THROUGHPUT in netperf's output")
        units = kv.get("THROUGHPUT_UNITS", "Trans/s")
        try:
            if units == "Trans/s":
                return _request_response(kv)
            if units == "10^6bits/s":
                return _stream(kv)
        except ValueError as e:
            raise ToolError(f"garbled netperf value: {e}") from None
        raise ToolError(f"unexpected netperf throughput unit {units!r}")


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:   # a name, not an address: netperf resolves it
        return False


def host_cpu_lines(busy_seconds: float, wall_seconds: float, mhz: float) -> str:
    return (f"{BUSY}={busy_seconds:.2f}\n{WALL}={wall_seconds:.3f}\n"
            f"{CPUS}={os.cpu_count() or 1}\n{MHZ}={mhz:.1f}\n")


def _request_response(kv: dict[str, str]) -> list[Measurement]:
    out = [Measurement("transactions_per_second", float(kv["THROUGHPUT"]), "trans/s")]
    for key, metric in (("MEAN_LATENCY", "latency_mean"), ("P50_LATENCY", "latency_p50"),
                        ("P90_LATENCY", "latency_p90"), ("P99_LATENCY", "latency_p99")):
        if key in kv:
            out.append(Measurement(metric, float(kv[key]), "us", "lower"))
    return out


def _stream(kv: dict[str, str]) -> list[Measurement]:
    mbps = float(kv["THROUGHPUT"])  # netperf's 10^6 bits per second
    out = [Measurement("throughput_mbps", mbps, "Mbit/s")]
    if BUSY not in kv:
        raise ToolError(f"no {BUSY} line: this output was not recorded by bench's netperf workload")
    if "ELAPSED_TIME" not in kv:
        raise ToolError("no ELAPSED_TIME in netperf's output")
    moved = mbps * 1e6 / 8 * float(kv["ELAPSED_TIME"])  # bytes
    if moved <= 0:
        raise ToolError("netperf moved no data")
    busy = float(kv[BUSY])
    out.append(Measurement("cpu_ns_per_byte", busy * 1e9 / moved, "ns/B", "lower"))
    mhz = float(kv.get(MHZ, "0"))
    if mhz > 0:  # a host whose /proc/cpuinfo gives no clock gets no cycle count
        out.append(Measurement("cycles_per_byte", busy * mhz * 1e6 / moved, "cycles/B", "lower"))
    return out
