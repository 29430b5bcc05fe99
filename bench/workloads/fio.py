"""fio: disk I/O with libaio and direct I/O, as the study ran it, read from fio's JSON output."""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import field_validator, model_validator

from ..environments.base import Environment
from ..errors import ToolError
from ..model import Measurement
from .base import CellContext, Params, Pause, RawOutput, Seconds, Workload, _bounded, first_line


# fio's size syntax as bench accepts it: a whole number and a binary unit (k, M, G, T; fio reads
# them as powers of 1024 by default), nothing else: no expressions, ranges, or anything a shell
# or fio's option parser could make more of.
SIZE = re.compile(r"^([1-9][0-9]{0,12})([kKmMgGtT]?)$")
UNIT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def size_bytes(text: str) -> int:
    m = SIZE.fullmatch(text)
    if not m:
        raise ValueError(f"a size in fio's syntax: a whole number and k, M, G or T (4k, 256M), not {text[:30]!r}")
    return int(m[1]) * UNIT[m[2].lower()]


class FioParams(Params):
    rw: Literal["read", "write", "randread", "randwrite", "randrw", "rw"]
    bs: str                        # fio size syntax: 4k, 1M
    iodepth: _bounded(1, 4096) = 1
    numjobs: _bounded(1, 256) = 1
    size: str = "256M"             # the data file every job shares; lab runs use the study's 16G
    runtime: Seconds = 10          # seconds; with time_based false, an upper bound
    time_based: bool = True        # false for a fill: write the file once, end to end
    ramp_time: Pause = 0           # seconds run before fio starts counting
    # the asynchronous engine the study used, and the synchronous ones every Linux fio has
    ioengine: Literal["libaio", "io_uring", "psync", "sync", "pvsync", "pvsync2", "posixaio"] = "libaio"
    direct: bool = True            # bypass the page cache: measure the device path, not memory
    rwmixread: _bounded(0, 100) | None = None   # % reads, for randrw
    thread: bool = True            # jobs as threads of one process, as the study's job file

    @field_validator("bs", "size")
    @classmethod
    def fio_size(cls, value: str, info) -> str:
        n = size_bytes(value)
        if info.field_name == "bs" and not 512 <= n <= 64 << 20:
            raise ValueError(f"a block size from 512 to 64M, not {value}")
        if info.field_name == "size" and not 1 << 20 <= n <= 64 << 40:
            raise ValueError(f"a file size from 1M to 64T, not {value}")
        return value

    @model_validator(mode="after")
    def block_fits_the_file(self) -> "FioParams":
        if size_bytes(self.bs) > size_bytes(self.size):
            raise ValueError(f"bs {self.bs} is larger than the file (size {self.size})")
        return self


DATA_FILE = "bench-fio-data"


def _percentile_name(key: str) -> str:
    """fio's "99.900000" -> "p99_9" (a metric name that is also a valid column name)."""
    return "p" + format(float(key), "g").replace(".", "_")


class Fio(Workload):
    tool = "fio"
    resource = "disk"
    # Direct I/O reads the device: a win over native is a cache on the path (gVisor's volume
    # does not honour O_DIRECT), never the disk itself.
    implausible_win = "not plausible for direct I/O: a cache on the path, not the disk"
    programs = ("fio",)
    packages = ("fio",)
    raw_suffix = "json"
    Params = FioParams

    def timeout(self, params: FioParams) -> float:
        # Laying out the file is not part of runtime; allow generously for a slow disk.
        return params.runtime + params.ramp_time + 300.0

    def scratch_bytes(self, params: FioParams) -> int:
        return size_bytes(params.size)   # the one data file of this size (see run())

    def version(self, env: Environment) -> str:
        r = env.exec(["fio", "--version"], timeout=20)
        return first_line(r.stdout) if r.ok else ""

    @staticmethod
    def argv(p: FioParams, directory: str, name: str) -> list[str]:
        argv = [
            "fio", f"--name={name}", f"--directory={directory}", f"--filename={DATA_FILE}-{p.size}",
            f"--rw={p.rw}", f"--bs={p.bs}", f"--iodepth={p.iodepth}", f"--numjobs={p.numjobs}",
            f"--size={p.size}", f"--runtime={p.runtime}",
            f"--ioengine={p.ioengine}", f"--direct={int(p.direct)}",
            "--group_reporting", "--output-format=json",
        ]
        if p.time_based:
            argv.append("--time_based")
        if p.ramp_time:
            argv.append(f"--ramp_time={p.ramp_time}")
        if p.rwmixread is not None:
            argv.append(f"--rwmixread={p.rwmixread}")
        if p.thread:
            argv.append("--thread")
        return argv

    def run(self, ctx: CellContext) -> RawOutput:
        # One data file per environment and size, shared by every fio workload and all their
        # jobs (as the study ran its whole job set on one 16 GB file): the space needed is one
        # file whatever the catalogue holds, and a sequential fill run first lays it out for the
        # reads that follow.
        directory = f"{ctx.env.workdir}/fio"
        mk = ctx.env.exec(["mkdir", "-p", directory], timeout=30)
        if not mk.ok:
            raise ToolError(f"cannot make {directory}: {mk.stderr.strip()}")
        result = ctx.env.exec(self.argv(ctx.params, directory, ctx.label), ctx.timeout)
        return RawOutput(result.stdout, result)

    @staticmethod
    def parse(text: str, params: FioParams) -> list[Measurement]:
        # fio may print notes before the JSON document; it starts at the first "{" of a line.
        m = re.search(r"^\{", text, re.MULTILINE)
        if not m:
            raise ToolError("no JSON document in fio's output")
        try:
            doc = json.loads(text[m.start():])
            job = doc["jobs"][0]
        except (ValueError, KeyError, IndexError) as e:
            raise ToolError(f"unreadable fio JSON: {e}") from None
        if job.get("error"):
            raise ToolError(f"fio job reported error {job['error']}")
        # A signalled fio still prints a well-formed document with the I/O done so far: a run
        # that stopped early is a partial one, not a sample. job_runtime (ms) sums the jobs.
        if params.time_based:
            ran = job.get("job_runtime", 0) / params.numjobs / 1000.0
            if ran < 0.9 * params.runtime:
                raise ToolError(f"fio stopped after {ran:.1f} s of the {params.runtime} s asked (partial run)")
        out: list[Measurement] = []
        for direction in ("read", "write"):
            d = job.get(direction)
            if not d or not d.get("total_ios"):
                continue
            iops = Measurement(f"{direction}_iops", float(d["iops"]), "IOPS")
            bandwidth = Measurement(f"{direction}_bandwidth", d["bw"] / 1024.0, "MiB/s")
            # The headline (first) figure: MB/s for sequential jobs, IOPS for random, as the study.
            out += [bandwidth, iops] if params.rw in ("read", "write", "rw") else [iops, bandwidth]
            clat = d.get("clat_ns", {})
            if "mean" in clat:
                out.append(Measurement(f"{direction}_clat_mean", clat["mean"] / 1000.0, "us", "lower"))
            for key, ns in clat.get("percentile", {}).items():
                out.append(Measurement(f"{direction}_clat_{_percentile_name(key)}", ns / 1000.0,
                                       "us", "lower"))
        if not out:
            raise ToolError("fio finished without completing any I/O")
        if params.rw in ("randrw", "rw"):
            # A mixed job's headline is all I/O together, as the study reported it.
            total = sum(m.value for m in out if m.metric.endswith("_iops"))
            out.insert(0, Measurement("total_iops", total, "IOPS"))
        return out
