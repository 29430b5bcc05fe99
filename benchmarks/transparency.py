"""Transparency: does a tool run by `bench run --env host` measure what the same command run
directly measures? fio 4 KiB random read and netperf TCP_RR, interleaved (direct, bench,
direct, bench, ...) so that a drift of the machine lands on both; the ratio of the medians of
the headline number (bench / direct) should be 1.00 ± 0.03.

The direct command is built by the workload module's own argv builder with the catalogue's
quick parameters, so both sides run the identical command; the direct side also runs the same
warm-up first, in a fresh data folder, as bench does.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

import yaml

from bench import config
from bench.environments.host import free_loopback_ports
from bench.workloads.fio import Fio
from bench.workloads.netperf import Netperf

from .common import bench_run, median, private_config, samples, verdict

FIO, NETPERF = "fio-randread-4k", "netperf-tcp-rr"
TOLERANCE = 0.03


def _headline(parse, text: str, params: dict) -> tuple[str, float]:
    first = parse(text, params)[0]
    return first.metric, first.value


def direct_fio(params: dict, warmups: int) -> tuple[str, float]:
    folder = tempfile.mkdtemp(prefix="bench-benchmarks-fio-", dir="/var/tmp")
    try:
        for i in range(warmups + 1):
            argv = Fio.argv(params, folder, f"direct-{i}")
            r = subprocess.run(argv, capture_output=True, text=True, timeout=Fio().timeout(params))
            if r.returncode != 0:
                raise RuntimeError(f"fio failed: {r.stderr.strip()[:200]}")
        return _headline(Fio.parse, r.stdout, params)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"netserver did not listen on 127.0.0.1:{port}")


def direct_netperf(params: dict, warmups: int) -> tuple[str, float]:
    """netserver on 127.0.0.1 started here and stopped by its pid, as bench does per repetition."""
    for _ in range(warmups + 1):
        control, data = free_loopback_ports(2)
        server = subprocess.Popen(["netserver", "-D", "-4", "-L", "127.0.0.1", "-p", str(control)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_listening(control)
            argv = Netperf.client_argv(params, "127.0.0.1", control, data)
            r = subprocess.run(argv, capture_output=True, text=True, timeout=params["length"] + 60)
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if r.returncode != 0:
            raise RuntimeError(f"netperf failed: {r.stderr.strip()[:200]}")
    return _headline(Netperf.parse, r.stdout, params)


def via_bench(cfg, suite: str, workload: str, metric: str, out) -> float:
    folder, _ = bench_run(cfg, suite, "host", out, "--reps", "1")
    values = [s["value"] for s in samples(folder) if s["workload"] == workload and s["metric"] == metric]
    if len(values) != 1:
        raise RuntimeError(f"{folder}: expected one {metric} sample, found {len(values)}")
    shutil.rmtree(folder, ignore_errors=True)
    return values[0]


def run(pairs: int = 5, seconds: int = 3) -> list[dict]:
    cfg = private_config({"bm-transparency-fio": [FIO], "bm-transparency-netperf": [NETPERF]})
    results = []
    try:
        # Pin the run length (3 s by default) in the private copy: bench and direct read the same.
        for tool, name, key in (("fio", FIO, "runtime"), ("netperf", NETPERF, "length")):
            path = cfg / "catalogue" / f"{tool}.yaml"
            doc = yaml.safe_load(path.read_text())
            doc[name].setdefault("profiles", {}).setdefault("quick", {})[key] = seconds
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
        mine = config.load(cfg)
        out = cfg / "results"
        for workload, suite, direct in ((FIO, "bm-transparency-fio", direct_fio),
                                        (NETPERF, "bm-transparency-netperf", direct_netperf)):
            w = mine.workload(workload, "quick")
            d, b, metric = [], [], ""
            for _ in range(pairs):
                metric, value = direct(w.params, w.warmups)
                d.append(value)
                b.append(via_bench(cfg, suite, workload, metric, out))
            ratio = median(b) / median(d)
            results.append({"benchmark": f"transparency {workload}", "metric": metric, "direct": d, "bench": b,
                            "median_direct": median(d), "median_bench": median(b), "ratio": ratio,
                            "target": "1.00 ± 0.03", "met": abs(ratio - 1) <= TOLERANCE})
            print(f"  {workload}: {metric} median direct {median(d):,.1f}, via bench {median(b):,.1f} "
                  f"(n={pairs} each, interleaved): ratio {ratio:.3f} - target 1.00 ± {TOLERANCE:.2f} "
                  f"{verdict(abs(ratio - 1) <= TOLERANCE)}", flush=True)
    finally:
        shutil.rmtree(cfg, ignore_errors=True)
    return results
