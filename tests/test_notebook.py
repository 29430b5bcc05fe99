"""notebooks/analysis.ipynb runs from top to bottom on real runs: two tiny runs, on the host and
in Docker, one with 1 sysbench thread and one with 2, so that it has ratios and a sweep to draw."""

from __future__ import annotations

import nbclient  # the test extras have them (and ipykernel, the kernel it starts)
import nbformat
import pytest

import bench

from conftest import ROOT
from test_export import tiny_run

pytestmark = pytest.mark.integration


def outputs(cell) -> tuple[str, set[str]]:
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    kinds = {k for o in cell.outputs for k in o.get("data", {})}
    return text, kinds


def test_notebook_executes_on_real_runs(tmp_path, docker_client, monkeypatch):
    results = tmp_path / "results"
    for threads in (1, 2):
        tiny_run(tmp_path, f"tiny-threads{threads}", env="host,docker-host", threads=threads, out=results)
    expected = bench.load(results)
    measured = expected[expected.workload != "provision"]  # provisioning samples have no threads
    assert set(measured["param_threads"]) == {1, 2} and set(expected["environment"]) == {"host", "docker-host"}

    monkeypatch.setenv("BENCH_RUNS", str(results))
    nb = nbformat.read(ROOT / "notebooks" / "analysis.ipynb", as_version=4)
    # Raises CellExecutionError, with the cell and its traceback, on any error.
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()

    code = [c for c in nb.cells if c.cell_type == "code"]
    text, _ = outputs(code[0])
    assert f"{len(expected)} samples from 2 run(s)" in text
    figures = [c for c in code if "image/png" in outputs(c)[1]]
    assert len(figures) == 2, "the normalised bars and the sweep plot"
    assert "ratio_low" in figures[0].source and "sweep_" in figures[1].source
    assert not any("no sweep" in outputs(c)[0] or "nothing to normalise" in outputs(c)[0] for c in code)
