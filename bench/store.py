"""The results store: one folder per run, written so that a crash loses at most what was in flight.

    results/<run-id>/run.json        resolved config, metadata, status (rewritten atomically)
    results/<run-id>/samples.jsonl   one Sample per line, appended and fsync'ed per repetition
    results/<run-id>/failures.jsonl  one Failure per line, same discipline
    results/<run-id>/raw/...         every tool's raw output, named env/workload/rep-N.ext

Folders of runs merge by copying: bench.load() takes any number of run folders or parents of them.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import BenchError
from .model import FORMAT_VERSION, SAMPLE_FIELDS, Failure, Sample

MANIFEST = "run.json"
SAMPLES = "samples.jsonl"
FAILURES = "failures.jsonl"
RAW = "raw"

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_run_id(run_id: str) -> str:
    """A run id becomes a folder name: it must not be able to escape the results folder."""
    if not _RUN_ID.match(run_id) or ".." in run_id:
        raise BenchError(f"invalid run id {run_id!r}: use letters, digits, '.', '-' and '_'")
    return run_id


def _append_lines(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    data = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
    with open(path, "a") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


class RunStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.run_id = self.path.name

    @classmethod
    def create(cls, root: Path, run_id: str) -> "RunStore":
        check_run_id(run_id)
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

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Atomic replace: a reader (or a crash) sees the old or the new file, never half of one."""
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".run.", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump({"format_version": FORMAT_VERSION, **manifest}, f, indent=2, sort_keys=True,
                      default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path / MANIFEST)

    def append_samples(self, samples: list[Sample]) -> None:
        _append_lines(self.path / SAMPLES, (s.to_json() for s in samples))

    def append_failure(self, failure: Failure) -> None:
        _append_lines(self.path / FAILURES, [failure.to_json()])

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
        return [Sample.from_json(r) for r in _read_lines(self.path / SAMPLES)]

    def failures(self) -> list[dict[str, Any]]:
        return _read_lines(self.path / FAILURES)


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((Path(path) / MANIFEST).read_text())
    except FileNotFoundError:
        raise BenchError(f"{path}: not a run folder (no {MANIFEST})") from None
    except ValueError as e:
        raise BenchError(f"{path / MANIFEST}: unreadable: {e}") from None
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BenchError(f"{path}: results format {version!r} is newer than this bench "
                         f"understands ({FORMAT_VERSION}); upgrade bench")
    return manifest


def _read_lines(path: Path) -> list[dict[str, Any]]:
    """Every complete line; a torn last line (the process died mid-write) is skipped."""
    if not path.exists():
        return []
    rows = []
    with open(path) as f:
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


def effective_status(manifest: dict[str, Any]) -> str:
    """The recorded status, except that a "running" run whose process is gone is "incomplete"
    (it was SIGKILLed, or the machine went down)."""
    import psutil

    status = manifest.get("status", "unknown")
    if status != "running":
        return status
    try:
        alive = "bench" in " ".join(psutil.Process(manifest.get("pid", -1)).cmdline())
    except (psutil.Error, ValueError):
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
    repetition, timestamp, then every workload parameter as a column of its own, then the
    environment's variant as it ran as env_<key> columns (env_network, env_accel...).
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
    rows = []
    for folder in run_folders(paths or ["results"]):
        status = effective_status(read_manifest(folder))  # also refuses a format it cannot read
        if status != "complete":
            warnings.warn(f"{folder}: run is {status}: its samples are a part of the planned ones "
                          f"(finish it with `bench run --resume {folder.name}`)", stacklevel=3)
        for row in _read_lines(folder / SAMPLES):
            params = row.pop("params", {}) or {}
            variant = {f"env_{k}": v for k, v in (row.pop("variant", {}) or {}).items()}
            rows.append({**row, **params, **variant})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(SAMPLE_FIELDS))
    first = [c for c in SAMPLE_FIELDS if c in frame.columns]
    return frame[first + sorted(c for c in frame.columns if c not in SAMPLE_FIELDS)]
