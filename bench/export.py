"""`bench export`: the tidy samples of bench.load() as a file other tools read (R, a spreadsheet,
DuckDB, Spark): CSV, Parquet or JSON lines, one row per sample, the same columns as load().

CSV and Parquet hold one value per cell: a list or mapping parameter (redis' `tests`) is written
as its JSON text there; JSON lines keep it as it is. `timestamp` is ISO 8601 text with its UTC
offset in CSV and JSON lines, a timezone-aware timestamp in Parquet.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .errors import BenchError
from .output import output_file

FORMATS = ("csv", "parquet", "jsonl")
SUFFIX = {"csv": ".csv", "parquet": ".parquet", "jsonl": ".jsonl"}


def _flat(frame):
    """One scalar per cell: lists and mappings as JSON text, and a column that mixes kinds of
    values (a parameter that is a number in one workload and a word in another) as text."""
    frame = frame.copy()
    if "timestamp" in frame:
        frame["timestamp"] = _iso(frame["timestamp"])
    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        values = frame[column]
        nested = values.map(lambda v: isinstance(v, (list, dict)))
        if nested.any():
            frame[column] = values.map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v)
        kinds = {type(v) for v in frame[column] if not _missing(v)}
        if len(kinds) > 1 and not kinds <= {int, float}:
            frame[column] = frame[column].map(lambda v: None if _missing(v) else str(v))
    return frame


def _iso(times):
    """ISO 8601 with the offset, as samples.jsonl has it (pandas' own text has a space for T)."""
    return times.map(lambda t: t.isoformat(timespec="microseconds") if not _missing(t) else None)


def _missing(v) -> bool:
    import pandas as pd

    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def write(frame, fmt: str, out: Path) -> Path:
    """Write the samples to `out` in `fmt`; returns `out`."""
    if fmt not in FORMATS:
        raise BenchError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise BenchError("Parquet needs pyarrow: pip install pyarrow (or run scripts/setup.sh)") from None
    with output_file(out, binary=fmt == "parquet") as f:
        if fmt == "csv":
            _flat(frame).to_csv(f, index=False)  # floats as repr: they read back exactly
        elif fmt == "parquet":
            flat = _flat(frame)
            flat["timestamp"] = frame["timestamp"]    # Parquet has a timezone-aware type of its own
            flat.to_parquet(f, index=False)
        else:
            # json.dumps rather than DataFrame.to_json: the latter rounds floats to 10 digits.
            frame = frame.assign(timestamp=_iso(frame["timestamp"]))
            for record in frame.to_dict("records"):
                record = {k: None if _missing(v) else v for k, v in record.items()}
                f.write(json.dumps(record, default=_plain) + "\n")
    return out


def _plain(v):
    """numpy scalars (int64, bool_) as Python's own, for json."""
    if hasattr(v, "item"):
        return v.item()
    raise TypeError(f"cannot write {type(v).__name__} as JSON")
