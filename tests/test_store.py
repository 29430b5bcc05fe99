"""The results store: append-only samples that survive a torn write, and bench.load()."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

import bench
from bench.errors import BenchError
from bench.model import FORMAT_VERSION, SAMPLE_FIELDS, Failure, Sample
from bench.store import RunStore, read_manifest


def sample(rep: int, value: float, env: str = "host", **params) -> Sample:
    return Sample("r1", env, "host", "fio-randread-4k", "fio", "read_iops", "IOPS", value, "higher", rep,
                  params=params or {"rw": "randread", "iodepth": 16})


def test_round_trip_into_pandas(tmp_path):
    store = RunStore.create(tmp_path, "r1")
    store.write_manifest({"run_id": "r1", "status": "complete"})
    store.append_samples([sample(1, 100.0), sample(2, 110.0)])
    store.append_samples([sample(1, 50.0, env="other")])
    df = bench.load(store.path)
    assert list(df.columns[: len(SAMPLE_FIELDS)]) == list(SAMPLE_FIELDS)
    # parameters are columns of their own, named so they cannot pass for one of bench's
    assert {"param_rw", "param_iodepth"} <= set(df.columns) and "iodepth" not in df
    assert len(df) == 3
    assert df.groupby("environment")["value"].mean().to_dict() == {"host": 105.0, "other": 50.0}
    assert read_manifest(store.path)["format_version"] == FORMAT_VERSION


def test_loaded_types_integers_times_and_parity(tmp_path):
    store = RunStore.create(tmp_path, "r1")
    store.write_manifest({"run_id": "r1", "status": "complete"})
    store.append_samples([sample(1, 100.0, rw="randread", iodepth=16, direct=True),
                          sample(1, 7.0, env="host", bs="4k")])  # one without iodepth
    df = bench.load(store.path)
    assert str(df["param_direct"].dtype) == "boolean" and df["param_direct"].iloc[0]
    assert str(df["param_iodepth"].dtype) == "Int64" and df["param_iodepth"].isna().tolist() == [False, True]
    assert df["param_iodepth"].iloc[0] == 16 and df["repetition"].dtype.kind == "i"
    assert str(df["timestamp"].dt.tz) == "UTC"
    assert abs((df["timestamp"].iloc[0] - pd.Timestamp.now(tz="UTC")).total_seconds()) < 60
    assert str(df["parity_ok"].dtype) == "boolean" and df["parity_ok"].isna().all()
    # on disk: ISO 8601 with its offset, to the microsecond
    first = json.loads((store.path / "samples.jsonl").read_text().splitlines()[0])
    assert first["timestamp"].endswith("+00:00") and "T" in first["timestamp"]


def test_a_format_2_run_loads_with_the_same_times(tmp_path):
    """Formats 1 and 2 held seconds since the epoch; they load as the same UTC datetimes."""
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"format_version": 2, "run_id": "old", "status": "complete"}))
    row = {**Sample("old", "host", "host", "fio-randread-4k", "fio", "read_iops", "IOPS", 1.0, "higher", 1,
                    params={"iodepth": 16}).to_json(), "timestamp": 1795850145.5}
    (folder / "samples.jsonl").write_text(json.dumps(row) + "\n")
    df = bench.load(folder)
    assert df["timestamp"].iloc[0] == pd.Timestamp("2026-11-28T07:15:45.5", tz="UTC")
    assert Sample.from_json(row).timestamp == 1795850145.5   # and --resume reads it back


def test_every_file_of_a_run_is_readable_by_others(tmp_path):
    store = RunStore.create(tmp_path, "r1")
    store.write_manifest({"run_id": "r1", "status": "complete"})
    store.append_samples([sample(1, 1.0)])
    assert (store.path / "run.json").stat().st_mode & 0o777 == 0o644


def test_load_finds_runs_below_a_results_folder_and_merges_them(tmp_path):
    for run in ("a", "b"):
        s = RunStore.create(tmp_path, run)
        s.write_manifest({"run_id": run, "status": "complete"})
        s.append_samples([sample(1, 1.0)])
    assert len(bench.load(tmp_path)) == 2


def test_a_torn_last_line_is_skipped(tmp_path):
    store = RunStore.create(tmp_path, "r1")
    store.write_manifest({"run_id": "r1", "status": "running", "pid": 2**22 + 1})  # killed: its pid is gone
    store.append_samples([sample(1, 100.0)])
    with open(store.path / "samples.jsonl", "a") as f:
        f.write(json.dumps(sample(2, 1.0).to_json())[:40])  # the process died mid-write
    with pytest.warns(UserWarning) as caught:
        assert bench.load(store.path)["value"].tolist() == [100.0]
    said = " | ".join(str(w.message) for w in caught)
    assert "run is incomplete" in said and "skipped 1 unreadable record(s): line 2 torn" in said, said


def test_failures_are_kept(tmp_path):
    store = RunStore.create(tmp_path, "r1")
    store.append_failure(Failure("r1", "host", "hpcc", 2, "exit status 1", "boom"))
    assert store.failures()[0]["reason"] == "exit status 1"


def test_newer_format_is_refused(tmp_path):
    store = RunStore.create(tmp_path, "r1")
    (store.path / "run.json").write_text(json.dumps({"format_version": FORMAT_VERSION + 1}))
    with pytest.raises(BenchError, match="newer than this bench"):
        bench.load(store.path)


@pytest.mark.parametrize("run_id", ["../escape", "a/b", "..", ".hidden", "", "x" * 200])
def test_run_ids_cannot_escape_the_results_folder(tmp_path, run_id):
    with pytest.raises(BenchError, match="invalid run id"):
        RunStore.create(tmp_path, run_id)
    assert list(tmp_path.iterdir()) == []


def test_existing_run_folder_is_not_overwritten(tmp_path):
    RunStore.create(tmp_path, "r1")
    with pytest.raises(BenchError, match="already exists"):
        RunStore.create(tmp_path, "r1")


def test_unwritable_results_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(BenchError, match="cannot write results to .*--out"):
        RunStore.create(blocker / "results", "r1")


def test_load_of_a_missing_folder_says_so(tmp_path):
    with pytest.raises(BenchError, match="no such run folder"):
        bench.load(tmp_path / "missing")


def test_a_repetition_torn_mid_write_is_not_counted_and_resume_appends_cleanly(tmp_path):
    """A crash in the middle of a repetition's write leaves some of its lines and a fragment:
    none of that repetition counts (resume measures it again), and the next write does not glue
    itself onto the fragment."""
    store = RunStore.create(tmp_path, "r1")
    store.write_manifest({"run_id": "r1", "status": "complete"})
    store.append_samples([sample(1, 100.0), sample(1, 1.0, rw="randread", iodepth=1)])
    whole = [json.dumps({**sample(2, 110.0).to_json(), "batch": "torn", "batch_size": 3}) + "\n"] * 2
    with open(store.path / "samples.jsonl", "a") as f:
        f.write("".join(whole) + whole[0][:30])           # 2 of 3 lines, then a third cut short
    assert [s.repetition for s in store.samples()] == [1, 1]
    store.append_samples([sample(2, 111.0)])              # the resumed repetition
    lines = (store.path / "samples.jsonl").read_text().splitlines()
    assert all(line.endswith("}") for line in lines) and len(lines) == 5   # the fragment was cut off
    with pytest.warns(UserWarning, match=r"2 record\(s\) of 1 repetition\(s\) not wholly written"):
        df = bench.load(store.path)
    assert sorted(df["value"]) == [1.0, 100.0, 111.0] and "batch" not in df


HOLDER = """
import sys, time
from pathlib import Path
from bench.store import RunStore
RunStore(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_one_writer_per_run_and_liveness_by_the_lock(tmp_path):
    import subprocess
    import sys

    from bench.store import effective_status

    store = RunStore.create(tmp_path, "r1")
    store.write_manifest({"run_id": "r1", "status": "running", "pid": os.getpid()})  # a pid that is alive
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(store.path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(BenchError, match=rf"being written by another bench \(pid {holder.pid}\)"):
            RunStore(store.path).acquire()
        assert effective_status(read_manifest(store.path), store.path) == "running"
    finally:
        holder.kill()
        holder.wait()
    # its writer is gone: the run is incomplete although its recorded pid (ours) is alive
    assert effective_status(read_manifest(store.path), store.path) == "incomplete"
    taker = RunStore(store.path)
    assert taker.acquire() == holder.pid
    taker.release()


def _line_by_line(monkeypatch, *folders):
    """bench.load as the line-by-line reader alone gives it."""
    from bench import columnar

    with monkeypatch.context() as m:
        m.setattr(columnar, "read", lambda *a: None)
        return bench.load(*folders)


def test_the_columnar_reader_gives_the_line_by_line_frame(monkeypatch, tmp_path):
    """The recorded run of reports/ (format 3: batches, ISO times, params of every kind: ints,
    booleans, text, a list, a null) and a run of mixed samples load the same by column as
    record by record: the same columns, types, values and sweeps."""
    from bench import columnar
    from bench.store import MAX_LINE

    recorded = Path(__file__).resolve().parent.parent / "reports" / "20261203-113710-quick-18c4"
    store = RunStore.create(tmp_path, "r1")
    store.write_manifest({"run_id": "r1", "status": "complete"})
    store.append_samples([sample(1, 100.0, rw="randread", iodepth=16, direct=True),
                          sample(2, 7, env="docker", tests=["get", "set"]), sample(1, 3.5, bs="4k", rate=None)])
    for folders in ([recorded], [store.path], [recorded, store.path]):
        assert all(columnar.read(f / "samples.jsonl", MAX_LINE) is not None for f in folders)
        fast, slow = bench.load(*folders), _line_by_line(monkeypatch, *folders)
        pd.testing.assert_frame_equal(fast, slow, check_exact=True)
        assert fast.attrs == slow.attrs


@pytest.mark.parametrize("line", [
    '{"x": 1}',                                             # not a sample
    '[1, 2]',                                               # not an object
    '',                                                     # an empty line
    '{"a": 1} {"b": 2}',                                    # two objects on a line
], ids=["not a sample", "a list", "an empty line", "two objects"])
def test_a_file_the_columns_cannot_vouch_for_is_read_line_by_line(monkeypatch, tmp_path, line):
    from bench import columnar
    from bench.store import MAX_LINE

    store = RunStore.create(tmp_path, "r1")
    store.write_manifest({"run_id": "r1", "status": "complete"})
    store.append_samples([sample(1, 100.0), sample(2, 110.0)])
    with open(store.path / "samples.jsonl", "a") as f:
        f.write(line + "\n")
    assert columnar.read(store.path / "samples.jsonl", MAX_LINE) is None
    with pytest.warns(UserWarning, match="skipped 1 unreadable record"):
        df = bench.load(store.path)
    assert df["value"].tolist() == [100.0, 110.0]


def test_a_value_of_another_type_or_an_impossible_one_is_read_line_by_line(tmp_path):
    from bench import columnar
    from bench.store import MAX_LINE

    store = RunStore.create(tmp_path, "r1")
    store.write_manifest({"run_id": "r1", "status": "complete"})
    store.append_samples([sample(1, 100.0), sample(2, -1.0)])   # a negative rate: no measurement has it
    assert columnar.read(store.path / "samples.jsonl", MAX_LINE) is None
    with pytest.warns(UserWarning, match="a value no measurement can have"):
        assert bench.load(store.path)["value"].tolist() == [100.0]
