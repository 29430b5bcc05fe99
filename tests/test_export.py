"""`bench export` of a real tiny host run, read back with pandas: the same table as bench.load()."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

import bench

from conftest import bench_cli


def tiny_config(dest: Path, threads: int = 0, warmups: int = 0) -> Path:
    """A private copy of workloads/ whose `tiny` suite is sysbench-cpu alone, 1 s per repetition."""
    import shutil

    from conftest import ROOT

    shutil.copytree(ROOT / "workloads", dest)
    catalogue = dest / "catalogue" / "sysbench.yaml"
    entries = yaml.safe_load(catalogue.read_text())
    entries["sysbench-cpu"]["profiles"]["quick"] = {"time": 1, "threads": threads}
    entries["sysbench-cpu"]["warmups"] = warmups
    catalogue.write_text(yaml.safe_dump(entries))
    (dest / "suites" / "tiny.yaml").write_text(yaml.safe_dump(
        {"description": "sysbench-cpu for 1 s", "profile": "quick", "repetitions": 2, "workloads": ["sysbench-cpu"]}))
    return dest


def tiny_run(tmp: Path, run_id: str, env: str = "host", threads: int = 0, out: Path | None = None) -> Path:
    out = out or tmp / "results"
    config = tiny_config(tmp / f"config-{run_id}", threads=threads)
    r = bench_cli("--config-dir", str(config), "run", "--suite", "tiny", "--env", env, "--reps", "2",
                  "--out", str(out), "--run-id", run_id, "--scratch", str(tmp), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return out / run_id


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("export"), "tiny-host")


def read_back(path: Path, fmt: str) -> pd.DataFrame:
    """As another tool would read it; the timestamp text parsed as ISO 8601 with its offset."""
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "csv":
        got = pd.read_csv(path)
    else:
        got = pd.read_json(path, lines=True, dtype=False, precise_float=True)
    return got.assign(timestamp=pd.to_datetime(got["timestamp"], format="ISO8601"))


@pytest.mark.integration
@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_export_reads_back_as_bench_load(run, tmp_path, fmt):
    target = tmp_path / f"samples.{fmt}"
    r = bench_cli("export", str(run), "--format", fmt, "-o", str(target))
    assert r.returncode == 0, r.stderr
    expected = bench.load(run)
    assert f"{len(expected)} samples" in r.stdout and target.exists()
    got = read_back(target, fmt)
    assert len(expected) >= 2 and set(expected["metric"]) >= {"events_per_second"}
    assert list(got.columns) == list(expected.columns)
    # Values exactly, not approximately: the floats must survive the file format.
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_exact=True)


@pytest.mark.integration
def test_run_id_under_out_and_default_file_name(run, tmp_path):
    r = bench_cli("export", run.name, "--out", str(run.parent), "--format", "jsonl", "-o", str(tmp_path / "x.jsonl"))
    assert r.returncode == 0, r.stderr
    first = json.loads((tmp_path / "x.jsonl").read_text().splitlines()[0])
    assert first["run_id"] == "tiny-host" and first["environment"] == "host"
    # Default: RUN_ID.FORMAT in the current folder (bench_cli runs in the checkout: use cwd=tmp).
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "bench", "export", str(run)], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "tiny-host.csv").exists()


def test_bad_input_is_one_line(tmp_path):
    r = bench_cli("export", str(tmp_path / "nope"))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "no run folder" in lines[0]
    r = bench_cli("export", "x", "--format", "xlsx")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_parquet_without_pyarrow_is_one_clear_error(tmp_path, monkeypatch):
    import sys

    from bench import export
    from bench.errors import BenchError

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    with pytest.raises(BenchError, match="Parquet needs pyarrow: pip install pyarrow"):
        export.write(pd.DataFrame({"value": [1.0]}), "parquet", tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()
