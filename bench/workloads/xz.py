"""xz: parallel compression of a text corpus (the study's PXZ), MB/s of input compressed.

The study compressed a Wikipedia dump, which cannot be downloaded here and would have to be
copied into every environment. Instead each environment makes the same corpus itself: a small
awk program writes prose-like lines of words drawn from a fixed vocabulary with skewed
frequencies (xz compresses it about 3.6:1, close to enwik's 4:1). It is run with `mawk`, which
every Debian has (Priority: required) and the workload image shares with the host, so a given
seed and size give the same bytes everywhere; the corpus's SHA-256 is in every raw output to
show it.
"""

from __future__ import annotations

import re

from pydantic import Field

from ..environments.base import Environment
from ..errors import ToolError
from ..model import Measurement
from .base import ThreadsOrAll, _bounded, CellContext, Params, RawOutput, Workload, cpu_count, first_line

CORPUS_AWK = r"""
BEGIN {
    srand(seed)
    split("ba be bi bo bu ca ce ci co cu da de di do du fa fe fi fo fu ga ge gi go gu la le li lo lu " \
          "ma me mi mo mu na ne ni no nu pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu " \
          "va ve vi vo vu", syl, " ")
    ns = 0; for (k in syl) ns++
    for (w = 0; w < 4096; w++) {
        n = 1 + int(rand() * 4); word = ""
        for (j = 0; j < n; j++) word = word syl[1 + int(rand() * ns)]
        vocab[w] = word
    }
    written = 0
    while (written < bytes) {
        line = ""; len = 4 + int(rand() * 16)
        for (j = 0; j < len; j++) { r = rand(); line = line vocab[int(r * r * r * 4096)] " " }
        line = line "."
        print line
        written += length(line) + 1
    }
}
"""

# One repetition: make the corpus if this environment does not have it yet, then time xz alone.
# bash for pipefail: a failing xz must not hide behind wc's success. The corpus's size by
# wc, not stat: gVisor's statx refuses coreutils' flags ("Invalid argument").
SCRIPT = r"""
set -euo pipefail
corpus="$1"; seed="$2"; bytes="$3"; shift 3
if [ ! -s "$corpus" ]; then mawk -v seed="$seed" -v bytes="$bytes" -f "$corpus.awk" > "$corpus.tmp"; mv "$corpus.tmp" "$corpus"; fi
echo "corpus_bytes=$(wc -c < "$corpus")"
echo "corpus_sha256=$(sha256sum < "$corpus" | cut -d' ' -f1)"
echo "command=$*"
start=$(date +%s%N)
out=$("$@" < "$corpus" | wc -c)
end=$(date +%s%N)
echo "compressed_bytes=$out"
echo "nanoseconds=$((end - start))"
"""


class XzParams(Params):
    corpus_mib: _bounded(1, 1 << 16) = 64   # size of the generated text corpus
    seed: _bounded(0, 2**32 - 1) = 2014
    level: _bounded(0, 9) = 6   # xz's default preset, as PXZ used
    threads: ThreadsOrAll = 0       # 0: one per CPU of the environment
    # xz compresses blocks in parallel; its default block (3 x the dictionary, 24 MiB at -6)
    # would leave threads idle on a small corpus. 0 keeps xz's default.
    block_mib: _bounded(0, 1 << 16) = 0


class Xz(Workload):
    tool = "xz"
    resource = "CPU"
    programs = ("xz", "mawk", "bash")
    packages = ("xz-utils",)
    numa_interleave = True
    Params = XzParams

    def timeout(self, params: XzParams) -> float:
        # Generous: corpus generation plus compression at well under 1 MB/s (a TCG guest).
        return 120.0 + params.corpus_mib * 10.0

    def version(self, env: Environment) -> str:
        r = env.exec(["xz", "--version"], timeout=20)
        return first_line(r.stdout) if r.ok else ""

    @staticmethod
    def xz_argv(p: XzParams, threads: int) -> list[str]:
        argv = ["xz", f"-{p.level}", f"--threads={threads}", "--stdout"]
        if p.block_mib:
            argv.append(f"--block-size={p.block_mib}MiB")
        return argv

    def run(self, ctx: CellContext) -> RawOutput:
        p = ctx.params
        threads = p.threads or cpu_count(ctx.env)
        corpus = f"{ctx.env.workdir}/xz-corpus-{p.seed}-{p.corpus_mib}m.txt"
        ctx.env.put_file(f"{corpus}.awk", CORPUS_AWK.encode())
        argv = ["bash", "-c", SCRIPT, "xz-bench", corpus, str(p.seed), str(p.corpus_mib * 1024 * 1024),
                *self.xz_argv(ctx.params, threads)]
        result = ctx.env.exec(argv, ctx.timeout)
        return RawOutput(f"threads={threads}\n{result.stdout}", result)

    @staticmethod
    def parse(text: str, params: XzParams) -> list[Measurement]:
        kv = dict(re.findall(r"^([a-z0-9_]+)=(.*)$", text, re.MULTILINE))
        missing = [k for k in ("corpus_bytes", "compressed_bytes", "nanoseconds") if k not in kv]
        if missing:
            raise ToolError(f"xz run incomplete: no {', '.join(missing)} in its output")
        try:
            size, packed, ns = int(kv["corpus_bytes"]), int(kv["compressed_bytes"]), int(kv["nanoseconds"])
        except ValueError as e:
            raise ToolError(f"garbled xz output: {e}") from None
        if packed <= 0 or ns <= 0:
            raise ToolError("xz wrote nothing")  # killed before its first block was out
        return [
            Measurement("compress_throughput", size / (ns / 1e9) / 1e6, "MB/s"),
            Measurement("compression_ratio", size / packed, "x"),
            Measurement("compress_seconds", ns / 1e9, "s", "lower"),
        ]
