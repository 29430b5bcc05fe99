"""HPC Challenge (Debian's hpcc, linked to OpenBLAS): HPL/Linpack, STREAM and RandomAccess.

One hpcc run measures all three of the study's CPU and memory workloads. hpcc sizes its STREAM
arrays and RandomAccess table from the HPL problem size N, so N is chosen per profile to make
the arrays much larger than the last-level cache (N=4000 on 2 ranks: 3 x 21 MB per rank).
STREAM is reported as hpcc's "Star" figure (every rank at once) times the number of ranks:
the whole machine's bandwidth, as the study's all-threads STREAM. The single-rank figure is
kept beside it.
"""

from __future__ import annotations

import math
import re

from ..environments.base import Environment
from ..errors import ToolError
from ..model import Measurement
from pydantic import Field

from .base import ThreadsOrAll, _bounded, CellContext, Params, RawOutput, Workload, cpu_count, dpkg_version

INPUT_TEMPLATE = """\
HPLinpack benchmark input file (written by bench)
Innovative Computing Laboratory, University of Tennessee
HPL.out      output file name (if any)
8            device out (6=stdout,7=stderr,file)
1            # of problems sizes (N)
{n}          Ns
1            # of NBs
{nb}         NBs
0            PMAP process mapping (0=Row-,1=Column-major)
1            # of process grids (P x Q)
{p}          Ps
{q}          Qs
16.0         threshold
1            # of panel fact
2            PFACTs (0=left, 1=Crout, 2=Right)
1            # of recursive stopping criterium
4            NBMINs (>= 1)
1            # of panels in recursion
2            NDIVs
1            # of recursive panel fact.
1            RFACTs (0=left, 1=Crout, 2=Right)
1            # of broadcast
1            BCASTs (0=1rg,1=1rM,2=2rg,3=2rM,4=Lng,5=LnM)
1            # of lookahead depth
1            DEPTHs (>=0)
2            SWAP (0=bin-exch,1=long,2=mix)
64           swapping threshold
0            L1 in (0=transposed,1=no-transposed) form
0            U  in (0=transposed,1=no-transposed) form
1            Equilibration (0=no,1=yes)
8            memory alignment in double (> 0)
##### This line (no. 32) is ignored (it serves as a separator). ######
0                               Number of additional problem sizes for PTRANS
1200 10000 30000                values of N
0                               number of additional blocking sizes for PTRANS
40 9 8 13 13 20 16 32 64        values of NB
"""


class HpccParams(Params):
    n: _bounded(100, 1_000_000) = 4000  # HPL problem size; also sizes STREAM and RandomAccess
    nb: _bounded(1, 4096) = 128  # HPL block size
    processes: ThreadsOrAll = 0  # MPI ranks; 0: one per CPU of the environment


def process_grid(processes: int) -> tuple[int, int]:
    """HPL's P x Q grid: as square as possible with P <= Q, which HPL prefers."""
    p = max(d for d in range(1, int(math.isqrt(processes)) + 1) if processes % d == 0)
    return p, processes // p


def input_file(p: HpccParams) -> str:
    rows, cols = process_grid(p.processes)
    return INPUT_TEMPLATE.format(n=p.n, nb=p.nb, p=rows, q=cols)


class Hpcc(Workload):
    tool = "hpcc"
    resource = "CPU"
    metric_resources = {"stream": "memory", "randomaccess": "memory"}   # HPL is CPU; STREAM, GUPS memory
    extra_metrics = ("stream_triad", "randomaccess_gups_single")      # the study's memory results
    uses_blas = True
    programs = ("hpcc", "mpirun")
    packages = ("hpcc", "openmpi-bin", "libopenblas0-serial")
    numa_interleave = True
    Params = HpccParams
    runtime_refusals = {"runsc": "Open MPI finds no CPU topology in gVisor's sysfs (hwloc), and mpirun "
                                 "fails before hpcc starts"}

    def timeout(self, params: HpccParams) -> float:
        # HPL grows with N^3; 4000 takes ~12 s on 2 cores here, 45000 hours on slow machines.
        return 120.0 + (params.n / 1000.0) ** 3

    def version(self, env: Environment) -> str:
        return dpkg_version(env, "hpcc")

    @staticmethod
    def argv(p: HpccParams) -> list[str]:
        # One BLAS thread per rank: ranks already fill the cores. mpirun passes its own
        # environment to local ranks. Open MPI's shared-memory transport copies between ranks
        # with process_vm_readv (CMA), which Docker's default seccomp profile refuses (EPERM,
        # then a slow fallback and a flood of "Read -1" lines); it is turned off everywhere so
        # that every environment runs the same MPI path.
        return ["env", "OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1",
                "mpirun", "--allow-run-as-root", "--oversubscribe",
                "--mca", "btl_vader_single_copy_mechanism", "none", "-np", str(p.processes), "hpcc"]

    def run(self, ctx: CellContext) -> RawOutput:
        # hpcc reads hpccinf.txt from, and appends hpccoutf.txt to, its working folder.
        directory = f"{ctx.env.workdir}/{ctx.label}"
        params = ctx.params.model_copy(update={"processes": ctx.params.processes or cpu_count(ctx.env)})
        ctx.env.put_file(f"{directory}/hpccinf.txt", input_file(params).encode())
        ctx.env.exec(["rm", "-f", f"{directory}/hpccoutf.txt"], timeout=30)
        result = ctx.env.exec(self.argv(params), ctx.timeout, cwd=directory)
        try:
            text = ctx.env.get_file(f"{directory}/hpccoutf.txt").decode(errors="replace")
        except FileNotFoundError:
            text = ""
        return RawOutput(text, result, {"stdout": result.stdout})

    @staticmethod
    def parse(text: str, params: HpccParams) -> list[Measurement]:
        m = re.search(r"^Begin of Summary section\.$(.*?)^End of Summary section\.$", text,
                      re.MULTILINE | re.DOTALL)
        if not m:
            raise ToolError("hpcc's output has no summary section (it was stopped or crashed)")
        summary = dict(re.findall(r"^(\w+)=(\S+)$", m.group(1), re.MULTILINE))
        if summary.get("Success") == "0":
            raise ToolError("hpcc reports Success=0 (a verification failed)")
        try:
            ranks = int(summary["CommWorldProcs"])
            out = [Measurement("hpl_gflops", float(summary["HPL_Tflops"]) * 1000.0, "GFLOPS")]
            for kernel in ("Copy", "Scale", "Add", "Triad"):
                out.append(Measurement(f"stream_{kernel.lower()}",
                                       float(summary[f"StarSTREAM_{kernel}"]) * ranks, "GB/s"))
            out.append(Measurement("stream_triad_single", float(summary["SingleSTREAM_Triad"]), "GB/s"))
            out.append(Measurement("randomaccess_gups", float(summary["MPIRandomAccess_GUPs"]), "GUP/s"))
            out.append(Measurement("randomaccess_gups_single",
                                   float(summary["SingleRandomAccess_GUPs"]), "GUP/s"))
        except (KeyError, ValueError) as e:
            raise ToolError(f"hpcc's summary lacks or garbles {e}") from None
        return out
