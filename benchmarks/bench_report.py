"""How long the report takes for a large results set: 100,800 synthetic samples, as a
pytest-benchmark test. The full benchmark suite (time and peak memory at 10^4..10^6 samples,
and the harness's other costs) is `.venv/bin/python -m benchmarks` (see PERFORMANCE.md).

Not part of the default test run (pytest collects tests/ only). Run it with
    .venv/bin/python -m pytest benchmarks/bench_report.py --benchmark-only
The shape (benchmarks/synthetic.py) is a lab-scale results set: 8 environments x 30 repetitions
x 420 cells each, with fio percentile sets (latency CDFs), two sweeps (Redis clients, MariaDB
threads) and plain workloads.
"""

from __future__ import annotations

import pytest

from bench.report import render_runs

from .synthetic import EXPECTED_FIGURES, write_run


@pytest.fixture(scope="module")
def big_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big") / "big-run"
    return folder, write_run(folder, 100_000)


def test_render_100k_samples(benchmark, big_run, tmp_path):
    folder, n = big_run
    assert n >= 100_000
    out = tmp_path / "big.html"
    benchmark.pedantic(render_runs, args=([folder], out), rounds=1, iterations=1)
    html = out.read_text()
    assert html.count("<figure><svg") == EXPECTED_FIGURES
    benchmark.extra_info.update(samples=n, html_mib=round(len(html) / 2**20, 1))
