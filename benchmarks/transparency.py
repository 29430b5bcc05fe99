"""Transparency: does a tool run by `bench run --env host` measure what the same command run
directly measures? fio 4 KiB random read and netperf TCP_RR. Each round runs the command
directly, through bench, and directly once more (the order rotating round to round), so that a
drift of the machine lands on every side; the ratio of the medians of the headline number
(bench / direct) should be 1.00 ± 0.03, and the A/A control (direct again / direct) says how
close to 1 two identical commands come here: the noise floor of that ratio. Both ratios are
also given as a ratio of means with its 95 % Fieller interval (bench.stats.fieller_ratio).

The direct command is built by the workload module's own argv builder with the catalogue's
quick parameters, so both sides run the identical command; the direct side also runs the same
warm-up first, in a fresh data folder of the same shape on the same file system, as bench does.
Each fio run also records the disk's busy share, fio's CPU use and the load average, which is
what tells a slow run from a fast one here (PERFORMANCE.md).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import tempfile
import time

import yaml

from bench import config
from bench.environments.host import free_loopback_ports
from bench.stats import fieller_ratio
from bench.workloads.fio import Fio
from bench.workloads.netperf import Netperf

from .common import bench_run, median, private_config, samples, verdict

FIO, NETPERF = "fio-randread-4k", "netperf-tcp-rr"
TOLERANCE = 0.03


def _headline(parse, text: str, params) -> tuple[str, float]:
    first = parse(text, params)[0]
    return first.metric, first.value


def _fio_detail(text: str) -> dict:
    """What says why one fio run was fast or slow: the disk's busy share (fio's disk_util) and
    fio's own CPU use, beside the machine's load."""
    try:
        doc = json.loads(text[text.index("{"):])
        job = doc["jobs"][0]
        util = [round(d.get("util", 0.0)) for d in doc.get("disk_util", [])]
        return {"disk_util_pct": util[0] if util else None, "usr_cpu_pct": round(job["usr_cpu"], 1),
                "sys_cpu_pct": round(job["sys_cpu"], 1), "ctx": job.get("ctx")}
    except (ValueError, KeyError, IndexError):
        return {}


def direct_fio(params, warmups: int) -> tuple[str, float, dict]:
    """fio as bench runs it on the host, by hand: the same argv (Fio.argv), in a fresh folder
    of the same shape under the same scratch root (/var/tmp/bench-...-host-XXXX/fio/), the data
    file laid out by the first warm-up, as bench's is."""
    root = tempfile.mkdtemp(prefix="bench-benchmarks-direct-host-", dir="/var/tmp")
    folder = os.path.join(root, "fio")
    os.mkdir(folder)
    try:
        for i in range(warmups + 1):
            argv = Fio.argv(params, folder, FIO)
            r = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                               timeout=Fio().timeout(params))
            if r.returncode != 0:
                raise RuntimeError(f"fio failed: {r.stderr.strip()[:200]}")
        return (*_headline(Fio.parse, r.stdout, params), _fio_detail(r.stdout))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"netserver did not listen on 127.0.0.1:{port}")


def direct_netperf(params, warmups: int) -> tuple[str, float, dict]:
    """netserver on 127.0.0.1 started here and stopped by its pid, as bench does per repetition."""
    for _ in range(warmups + 1):
        control, data = free_loopback_ports(2)
        server = subprocess.Popen(["netserver", "-D", "-4", "-L", "127.0.0.1", "-p", str(control)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_listening(control)
            argv = Netperf.client_argv(params, "127.0.0.1", control, data)
            r = subprocess.run(argv, capture_output=True, text=True, timeout=params.length + 60)
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if r.returncode != 0:
            raise RuntimeError(f"netperf failed: {r.stderr.strip()[:200]}")
    return (*_headline(Netperf.parse, r.stdout, params), {})


def via_bench(cfg, suite: str, workload: str, metric: str, out) -> tuple[float, dict]:
    folder, _ = bench_run(cfg, suite, "host", out, "--reps", "1")
    try:
        values = [s["value"] for s in samples(folder) if s["workload"] == workload and s["metric"] == metric]
        if len(values) != 1:
            raise RuntimeError(f"{folder}: expected one {metric} sample, found {len(values)}")
        raw = list(folder.glob(f"raw/**/{workload}/rep-1.json"))
        return values[0], (_fio_detail(raw[0].read_text()) if raw and workload == FIO else {})
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# The order of the three runs of each round rotates, so that no side always comes first (after
# a pause) or always follows bench's Python start-up.
ROTATION = (("direct", "bench", "direct2"), ("bench", "direct2", "direct"), ("direct2", "direct", "bench"))


def _ratio(num: list[float], den: list[float]) -> dict:
    r, low, high = fieller_ratio(num, den)
    return {"ratio_of_medians": median(num) / median(den), "ratio_of_means": r, "ci95": [low, high]}


def run(pairs: int = 5, seconds: int = 3) -> list[dict]:
    """`pairs` rounds per tool, each a direct run, a bench run and a second direct run (the A/A
    control: how far two identical direct commands differ here, the noise floor of the ratio)."""
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
            runs: list[dict] = []
            metric = ""
            for i in range(pairs):
                for side in ROTATION[i % len(ROTATION)]:
                    load = round(os.getloadavg()[0], 2)
                    if side == "bench":
                        value, detail = via_bench(cfg, suite, workload, _metric(workload), out)
                    else:
                        metric, value, detail = direct(w.params, w.warmups)
                    runs.append({"round": i, "side": side, "value": value, "load_avg_1min": load, **detail})
            metric = _metric(workload)
            side = {k: [r["value"] for r in runs if r["side"] == k] for k in ("direct", "bench", "direct2")}
            ab, aa = _ratio(side["bench"], side["direct"]), _ratio(side["direct2"], side["direct"])
            ratio = ab["ratio_of_medians"]
            met = abs(ratio - 1) <= TOLERANCE
            results.append({"benchmark": f"transparency {workload}", "metric": metric, "pairs": pairs,
                            "seconds": seconds, "runs": runs, **{f"median_{k}": median(v) for k, v in side.items()},
                            "ratio": ratio, "bench_vs_direct": ab, "direct_vs_direct": aa,
                            "target": "1.00 ± 0.03", "met": met,
                            # The set-up can tell ±3 % only if two identical commands' ratio is
                            # known to within ±3 %: its whole 95 % interval, not just its median.
                            "resolved": 1 - TOLERANCE <= aa["ci95"][0] and aa["ci95"][1] <= 1 + TOLERANCE})
            print(f"  {workload}: {metric} median direct {median(side['direct']):,.1f}, via bench "
                  f"{median(side['bench']):,.1f}, direct again {median(side['direct2']):,.1f} (n={pairs} each, "
                  f"interleaved)", flush=True)
            print(f"    bench/direct  {ratio:.3f} (means {ab['ratio_of_means']:.3f}, 95 % {_ci(ab)}) - target "
                  f"1.00 ± {TOLERANCE:.2f} {verdict(met)}", flush=True)
            print(f"    direct/direct {aa['ratio_of_medians']:.3f} (means {aa['ratio_of_means']:.3f}, 95 % {_ci(aa)})"
                  f" - the noise floor: {'within ±3 %, the ratio above can be judged' if results[-1]['resolved'] else 'its 95 % interval is wider than ±3 %: the ratio above cannot be judged here'}",
                  flush=True)
    finally:
        shutil.rmtree(cfg, ignore_errors=True)
    return results


def _ci(r: dict) -> str:
    low, high = r["ci95"]
    return f"{low:.3f}-{high:.3f}" if math.isfinite(low) and math.isfinite(high) else "unbounded"


def _metric(workload: str) -> str:
    return "read_iops" if workload == FIO else "transactions_per_second"
