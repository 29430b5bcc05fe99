"""The results store: one folder per run, written so that a crash loses at most what was in flight.

    results/<run-id>/run.json        resolved config, metadata, status (rewritten atomically)
    results/<run-id>/samples.jsonl   one Sample per line, appended and fsync'ed per repetition
    results/<run-id>/failures.jsonl  one Failure per line, same discipline
    results/<run-id>/raw/...         every tool's raw output, named env/workload/rep-N.ext

Folders of runs merge by copying: bench.load() takes any number of run folders or parents of them.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import math
import os
import re
import uuid
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import live
from .datafile import excerpt, shown
from .errors import BenchError
from .output import output_file
from .model import FORMAT_VERSION, SAMPLE_FIELDS, Failure, RunManifest, Sample, is_difference

MANIFEST = "run.json"
PARAM = "param_"   # the prefix of a workload parameter's column in load()
SAMPLES = "samples.jsonl"
FAILURES = "failures.jsonl"
RAW = "raw"
LOCK = live.LOCK    # the writer's flock (see RunStore.acquire)
lock_held = live.lock_held

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_run_id(run_id: str) -> str:
    """A run id becomes a folder name: it must not be able to escape the results folder."""
    if not _RUN_ID.fullmatch(run_id) or ".." in run_id:   # fullmatch: `$` matches before a final newline
        raise BenchError(f"invalid run id {excerpt(run_id)}: at most 128 letters, digits, '.', '-' and '_', "
                         f"beginning with a letter or digit")
    return run_id


def _append_lines(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append whole lines, fsync'ed. A torn tail a killed writer left (no end of line) is cut off
    first: appended to, it would glue the next record onto the fragment and lose both."""
    data = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows).encode()
    with open(path, "ab+") as f:
        _cut_torn_tail(f)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _cut_torn_tail(f) -> None:
    end = f.seek(0, os.SEEK_END)
    if end == 0:
        return
    f.seek(end - 1)
    if f.read(1) == b"\n":
        return
    at = end
    while at > 0:   # back to the last end of line, a block at a time
        start = max(0, at - 65536)
        f.seek(start)
        block = f.read(at - start)
        nl = block.rfind(b"\n")
        if nl >= 0:
            f.truncate(start + nl + 1)
            return
        at = start
    f.truncate(0)


class RunStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.run_id = self.path.name
        # What the files held when first read, and what this store has written since: a run's
        # one writer knows what it wrote without reading it back (see acquire()).
        self._samples: list[Sample] | None = None
        self._failures: list[dict[str, Any]] | None = None

    @classmethod
    def create(cls, root: Path, run_id: str) -> "RunStore":
        check_run_id(run_id)
        alive = live.holder(run_id)
        if alive is not None:   # the same id under another --out: its resources carry this id too
            raise BenchError(f"{alive}: choose another --run-id")
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
            path = root / run_id
            path.mkdir()
            (path / RAW).mkdir()
        except FileExistsError:
            raise BenchError(f"{root / run_id} already exists: choose another --run-id") from None
        except OSError as e:
            raise BenchError(f"cannot write results to {root}: {e.strerror}; choose another folder "
                             f"with --out") from None
        return cls(path)

    # -- writing ---------------------------------------------------------------------------

    def acquire(self) -> int | None:
        """Become the run's one writer: an exclusive flock on <run>/.lock, held until this
        process ends. Another live writer (a second --resume of the same run) is a BenchError
        before anything is made. Returns the pid of a dead writer whose lock this takes over."""
        try:
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise BenchError(f"cannot lock {self.path}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise BenchError(f"run {self.run_id} is being written by another bench (pid {holder or '?'}): "
                             f"wait for it to end, or stop it first") from None
        other = live.holder(self.run_id)
        if other is not None and other.folder != self.path.resolve():
            os.close(fd)   # the same id alive under another --out: its resources carry this id too
            raise BenchError(f"{other}: wait for it to end, or stop it first")
        previous = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock = fd   # kept open: closing it (or dying) releases the lock
        try:
            live.register(self.run_id, self.path)   # so that cleanup, by run id, can tell it is alive
        except OSError as e:
            os.close(fd)
            raise BenchError(f"cannot register run {self.run_id} as alive: {e.strerror or e}") from None
        return int(previous) if previous.isdigit() else None

    def release(self) -> None:
        fd = getattr(self, "_lock", None)
        if fd is not None:
            live.unregister(self.run_id, self.path)
            os.close(fd)
            self._lock = None

    def write_manifest(self, manifest: RunManifest | dict[str, Any]) -> None:
        """Atomic replace: a reader (or a crash) sees the old or the new file, never half of one;
        0644 like every other file of the folder, so an analyst who is not root can load it."""
        doc = manifest.to_json() if isinstance(manifest, RunManifest) else manifest
        with output_file(self.path / MANIFEST) as f:
            json.dump({**doc, "format_version": FORMAT_VERSION}, f, indent=2, sort_keys=True, default=str)

    def append_samples(self, samples: list[Sample]) -> None:
        """One repetition's samples as one batch: each line names the batch and its size, so a
        reader counts a repetition only when every line of it is there (a crash mid-write leaves
        an incomplete batch, which is skipped, and resume measures that repetition again)."""
        batch = {"batch": uuid.uuid4().hex[:16], "batch_size": len(samples)}
        _append_lines(self.path / SAMPLES, ({**s.to_json(), **batch} for s in samples))
        if self._samples is not None:
            self._samples.extend(samples)

    def drop_incomplete(self) -> int:
        """Rewrite samples.jsonl without what a killed writer left half-written (the lines of a
        batch not wholly there, a torn last line): the repetition is measured again, and the
        file a resumed run leaves is whole, with nothing for every later reader to warn of.
        Only the run's one writer calls this (it holds the lock). Returns the lines dropped."""
        path = self.path / SAMPLES
        if not path.exists():
            return 0
        rows, _ = read_records(path)   # an impossible value stays: a reader flags it, not this
        sizes: dict[str, int] = {}
        for r in rows:
            if isinstance(r.get("batch"), str):
                sizes[r["batch"]] = sizes.get(r["batch"], 0) + 1
        keep = [r for r in rows if "batch" not in r
                or (isinstance(r["batch"], str) and sizes[r["batch"]] == r.get("batch_size"))]
        torn = not path.read_bytes().endswith(b"\n") and path.stat().st_size > 0
        if len(keep) == len(rows) and not torn:
            return 0
        with output_file(path) as f:   # atomic: the old file or the new one, never half of one
            f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in keep)
        self._samples = None
        return len(rows) - len(keep) + torn

    def append_failure(self, failure: Failure) -> None:
        _append_lines(self.path / FAILURES, [failure.to_json()])
        if self._failures is not None:
            self._failures.append({"reason": "", "stderr": "", "raw": "", **failure.to_json()})

    def write_raw(self, parts: list[str], text: str) -> str:
        """Keep a raw output; returns its path relative to the run folder."""
        rel = Path(RAW, *parts)
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return str(rel)

    # -- reading ---------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        return read_manifest(self.path)

    def samples(self) -> list[Sample]:
        """The run's samples: read from samples.jsonl once, then kept with what this store adds."""
        if self._samples is None:
            self._samples = []
            for r in read_samples(self.path / SAMPLES)[0]:
                try:
                    self._samples.append(Sample.from_json(r))
                except (TypeError, ValueError):
                    continue   # not a sample (load() warns of it); resume runs that repetition again
        return list(self._samples)

    def failures(self) -> list[dict[str, Any]]:
        """The run's failure records: read once, then kept with what this store adds."""
        if self._failures is None:
            self._failures = read_failures(self.path / FAILURES)[0]
        return list(self._failures)


MAX_MANIFEST = 64 << 20   # bytes: a lab run's run.json, execution contexts and all, is ~1 MB
MAX_LINE = 1 << 20        # bytes: a sample's line is ~1 KB; a longer one is skipped, not read


def read_manifest(path: Path) -> dict[str, Any]:
    """run.json, refused in one line when it is not a run's: unreadable, not JSON, not an object,
    or of a format this bench does not know."""
    file = Path(path) / MANIFEST
    if not file.exists():
        raise BenchError(f"{path}: not a run folder (no {MANIFEST})")
    try:
        if not file.is_file():
            raise BenchError(f"{file}: not a regular file")
        with open(file, "rb") as f:
            data = f.read(MAX_MANIFEST + 1)
        if len(data) > MAX_MANIFEST:
            raise BenchError(f"{file}: larger than {MAX_MANIFEST >> 20} MB: not a run's manifest")
        manifest = json.loads(data.decode("utf-8"))
    except OSError as e:
        raise BenchError(f"{file}: cannot read: {e.strerror}") from None
    except (ValueError, RecursionError) as e:   # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise BenchError(f"{file}: unreadable: {str(e)[:120]}") from None
    if not isinstance(manifest, dict):
        raise BenchError(f"{file}: not a run's manifest (a JSON {type(manifest).__name__}, not an object)")
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BenchError(f"{file}: format_version must be a whole number from 1, not {excerpt(version)}")
    if version > FORMAT_VERSION:
        raise BenchError(f"{path}: results format {version} is newer than this bench "
                         f"understands ({FORMAT_VERSION}); upgrade bench")
    return manifest


def read_records(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every complete JSON object line of a .jsonl file, and what was skipped, line by line: a
    torn last line (the process died mid-write), a line that is not UTF-8 or not JSON, a JSON
    value that is not an object, a line longer than MAX_LINE (read past, never held whole)."""
    path = Path(path)
    if not path.exists():
        return [], []
    if not path.is_file():   # a folder, a FIFO or a device in the file's place: nothing to read
        raise BenchError(f"{path}: not a regular file")
    rows, skipped = [], []
    try:
        with open(path, "rb") as f:
            number = 0
            while True:
                line = f.readline(MAX_LINE + 1)
                if not line:
                    break
                number += 1
                if len(line) > MAX_LINE and not line.endswith(b"\n"):
                    while line and not line.endswith(b"\n"):   # the rest of the overlong line
                        line = f.readline(MAX_LINE)
                    skipped.append(f"line {number} longer than {MAX_LINE >> 20} MB")
                    continue
                if not line.endswith(b"\n"):
                    skipped.append(f"line {number} torn (no end of line)")
                    break
                try:
                    row = json.loads(line.decode("utf-8"))
                except (ValueError, RecursionError):
                    skipped.append(f"line {number} not JSON")
                    continue
                if isinstance(row, dict):
                    rows.append(row)
                else:
                    skipped.append(f"line {number} not an object")
    except OSError as e:
        raise BenchError(f"{path}: cannot read: {e.strerror}") from None
    return rows, skipped


def read_samples(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """samples.jsonl's records of committed batches (every line of the repetition there; lines
    of formats 1-2, without a batch, stand alone), and what was skipped."""
    rows, skipped = read_records(path)
    sizes: dict[str, int] = {}
    for r in rows:
        if isinstance(r.get("batch"), str):
            sizes[r["batch"]] = sizes.get(r["batch"], 0) + 1

    def committed(r: dict[str, Any]) -> bool:
        if "batch" not in r:
            return True
        return isinstance(r["batch"], str) and sizes[r["batch"]] == r.get("batch_size")

    whole = [r for r in rows if committed(r)]
    if len(whole) < len(rows):
        torn = {str(r.get("batch")) for r in rows if not committed(r)}
        skipped.append(f"{len(rows) - len(whole)} record(s) of {len(torn)} repetition(s) not wholly written")
    wrong = [r for r in whole if impossible(r.get("value"), r.get("metric"))]
    if wrong:
        first = wrong[0]
        skipped.append(f"{len(wrong)} record(s) with a value no measurement can have (first: "
                       f"{shown(first.get('metric'))} = {first.get('value')} {shown(first.get('unit'))})")
    return [r for r in whole if not impossible(r.get("value"), r.get("metric"))], skipped


def impossible(value: Any, metric: Any = None) -> bool:
    """A number no metric of bench can take: every one is a time, a count, a rate, a size or a
    ratio of them (latencies, durations, IOPS, bandwidths, GFLOPS), never negative or endless;
    only a difference of two readings (model.is_difference: MemAvailable's drop while instances
    idle, which other processes can turn negative) may be below zero.
    (A value that is not a number at all is a record without the fields of a sample.)"""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return not math.isfinite(value) or (value < 0 and not (isinstance(metric, str) and is_difference(metric)))


def read_failures(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """failures.jsonl's records that say where a repetition failed, and what was skipped."""
    rows, skipped = read_records(path)
    good = [r for r in rows if isinstance(r.get("environment"), str) and isinstance(r.get("workload"), str)
            and isinstance(r.get("repetition"), int) and not isinstance(r.get("repetition"), bool)]
    if len(good) < len(rows):
        skipped.append(f"{len(rows) - len(good)} record(s) without the fields of a failure")
    return [{"reason": "", "stderr": "", "raw": "", **r} for r in good], skipped


def warn_skipped(path: Path, skipped: list[str]) -> None:
    """One warning per file that had records it could not read: how many, and the first few."""
    if skipped:
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        warnings.warn(f"{path}: skipped {len(skipped)} unreadable record(s): {'; '.join(skipped[:3])}{more}",
                      stacklevel=3)


def effective_status(manifest: dict[str, Any], folder: Path | None = None) -> str:
    """The recorded status, except that a "running" run nobody runs is "incomplete" (it was
    SIGKILLed, or the machine went down). Alive means: its writer holds the run's lock (a run
    of format 3); for older runs, a process of that pid with "bench" in its command line."""
    status = manifest.get("status", "unknown")
    if status != "running":
        return status
    if folder is not None and (Path(folder) / LOCK).exists():
        return "running" if lock_held(Path(folder)) else "incomplete"
    import psutil

    try:
        alive = "bench" in " ".join(psutil.Process(manifest.get("pid", -1)).cmdline())
    except (psutil.Error, ValueError, TypeError):
        alive = False
    return "running" if alive else "incomplete"


def run_folders(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Run folders named directly, or found one level below a results folder."""
    found: list[Path] = []
    for p in map(Path, paths):
        if (p / MANIFEST).exists():
            found.append(p)
        elif p.is_dir():
            found.extend(sorted(c for c in p.iterdir() if (c / MANIFEST).exists()))
        else:
            raise BenchError(f"{p}: no such run folder")
    return found


def load(*paths: str | os.PathLike):
    """All samples of the given runs as one pandas DataFrame, one row per sample.

    Columns: run_id, environment, env_kind, workload, tool, metric, unit, value, better,
    repetition, timestamp (a UTC datetime), parity_ok, then each workload parameter as a
    param_<name> column (param_clients, param_warmup...: a workload's own setting is never
    mistaken for one of bench's), then the environment's variant as it ran as env_<key>
    columns (env_network, env_accel...). A parameter column has only the workloads loaded;
    one whose values are all whole numbers is an integer column (pandas' Int64, <NA> where a
    workload does not have it).
    """
    import pandas as pd  # imported here: the CLI's other verbs should not pay for pandas

    with paused_gc():
        return _load(pd, paths)


@contextlib.contextmanager
def paused_gc():
    """No cyclic garbage collection meanwhile: reading a results set makes a few hundred
    thousand dicts, none in a cycle, and the collector's passes over them were a third of
    load()'s time at 100,000 samples. Nothing is lost: it runs again afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _load(pd, paths):
    from . import columnar

    rows = []
    tables: list | None = []   # each run's samples by column, while every file so far allows it
    folders = run_folders(paths or ["results"])
    sweeps: dict[str, list[str]] = {}   # workload -> the parameters its repetitions sweep, as recorded
    for at, folder in enumerate(folders):
        manifest = read_manifest(folder)
        status = effective_status(manifest, folder)  # also refuses a format it cannot read
        for name, workload in (manifest.get("workloads") or {}).items():
            keys = workload.get("sweep_keys") if isinstance(workload, dict) else None
            if isinstance(keys, list) and all(isinstance(k, str) for k in keys):
                sweeps[name] = list(dict.fromkeys(sweeps.get(name, []) + keys))
        if status != "complete":
            warnings.warn(f"{folder}: run is {status}: its samples are a part of the planned ones "
                          f"(finish it with `bench run --resume {folder.name}`)", stacklevel=3)
        table = columnar.read(folder / SAMPLES, MAX_LINE) if tables is not None else None
        if table is not None:
            tables.append(table)
            continue
        if tables is not None:   # from here on record by record; the runs before had nothing to skip
            tables = None
            for earlier in folders[:at]:
                rows += _sample_rows(earlier)
        rows += _sample_rows(folder)
    frame = columnar.frame(pd, tables, PARAM, "env_") if tables else None
    if frame is None and tables:   # the runs' columns do not unify: one by one
        frame = pd.DataFrame([r for folder in folders for r in _sample_rows(folder)])
    elif frame is None:
        frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(SAMPLE_FIELDS))
    # The sweeps as the runs recorded them (stats.sweep_params reads them; a run made before
    # they were recorded has none, and its sweeps are inferred).
    frame.attrs["sweep_keys"] = sweeps
    frame["timestamp"] = _times(pd, frame["timestamp"])
    if "parity_ok" in frame:
        frame["parity_ok"] = frame["parity_ok"].astype("boolean")   # None (not checked) as <NA>
    for column in frame.columns:
        if not column.startswith(PARAM):
            continue
        if _whole_numbers(frame[column]):
            frame[column] = frame[column].astype("Int64")
        elif _booleans(frame[column]):   # fio's direct: true/false, <NA> for other workloads
            frame[column] = frame[column].astype("boolean")
    first = [c for c in SAMPLE_FIELDS if c in frame.columns]
    return frame[first + sorted(c for c in frame.columns if c not in SAMPLE_FIELDS)]


def _sample_rows(folder: Path) -> list[dict[str, Any]]:
    """A run's samples record by record, params and variant flattened; warns of what it skipped."""
    rows = []
    records, skipped = read_samples(folder / SAMPLES)
    wrong = sum(not _is_sample(r) for r in records)
    warn_skipped(folder / SAMPLES, skipped + [f"{wrong} record(s) without the fields of a sample"] * bool(wrong))
    for row in records:
        if not _is_sample(row):
            continue
        row.pop("batch", None), row.pop("batch_size", None)
        params = {f"{PARAM}{k}": v for k, v in (row.pop("params", {}) or {}).items()}
        variant = {f"env_{k}": v for k, v in (row.pop("variant", {}) or {}).items()}
        rows.append({**row, **params, **variant})
    return rows


def _is_sample(row: dict[str, Any]) -> bool:
    """The fields a table of samples cannot do without, of the types they must have."""
    value, repetition, parity_ok = row.get("value"), row.get("repetition"), row.get("parity_ok")
    return (all(isinstance(row.get(k), str) for k in ("run_id", "environment", "env_kind", "workload", "tool",
                                                       "metric", "unit"))
            and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and row.get("better") in ("higher", "lower")
            and isinstance(repetition, int) and not isinstance(repetition, bool)
            and isinstance(row.get("params", {}) or {}, dict) and isinstance(row.get("variant", {}) or {}, dict)
            and (parity_ok is None or isinstance(parity_ok, bool))
            and isinstance(row.get("timestamp", 0), (int, float, str)) and not isinstance(row.get("timestamp"), bool))


def _times(pd, column):
    """Format 3's ISO 8601 text and formats 1-2's seconds since the epoch, as UTC datetimes."""
    if column.dtype.kind in "iuf":   # a typed column (read by column): no value is text
        text = pd.Series(False, index=column.index)
    elif pd.api.types.is_string_dtype(column) and column.notna().all():
        text = pd.Series(True, index=column.index)
    else:
        text = column.map(lambda v: isinstance(v, str))
    times = pd.Series(pd.NaT, index=column.index, dtype="datetime64[ns, UTC]")
    if text.any():
        times[text] = pd.to_datetime(column[text], utc=True, format="ISO8601", errors="coerce")
    if (~text).any():
        seconds = pd.to_numeric(column[~text], errors="coerce")
        seconds = seconds.where(seconds.abs() < 1e11)   # beyond year 5138: not a time bench wrote
        times[~text] = pd.to_datetime(seconds, unit="s", utc=True, errors="coerce")
    return times


def _booleans(column) -> bool:
    values = column.dropna()
    return not values.empty and column.dtype != bool and all(isinstance(v, bool) for v in values)


def _whole_numbers(column) -> bool:
    """A parameter whose values are all integers (not booleans; floats only when whole, as a
    column with gaps has them): an integer column, not a float one."""
    import numbers

    values = column.dropna()
    if values.empty or column.dtype == bool:
        return False
    if column.dtype.kind == "f":
        return bool(((values == values.round()) & (values.abs() < 2**53)).all())
    if column.dtype.kind in "iu":   # a typed integer column: every value is one
        return True
    return all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values)
