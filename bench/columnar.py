"""samples.jsonl read by column: pyarrow's JSON reader into typed columns, checked by column.

store.load() reads a run's samples through here first. This reader takes a file only when it
can tell, column by column, that the line-by-line reader (store.read_samples and _is_sample)
would keep every line of it: each line one whole JSON object, no line over store's MAX_LINE,
every record a sample of the types a sample has, of a batch wholly written, with a value a
measurement can have. Anything else (a torn tail, a line that is not JSON, a record without
the fields of a sample, a repetition not wholly written, a value no metric can take, a type
the columns cannot tell apart from another) returns None, and the line-by-line reader reads
the file and says what it skipped, as it always has: what is kept and what is said of a
damaged file does not depend on this module.

Why: a lab's results set is 10^5-10^6 samples; one Python dict and one check per record was
most of load()'s time, and the dicts most of its memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .model import is_difference

NAMES = ("run_id", "environment", "env_kind", "workload", "tool", "metric", "unit", "better")
SCAN = 16 << 20   # bytes read at a time to check the lines (bounded memory at any size)


def _lines_whole(data: np.ndarray, max_line: int) -> int | None:
    """The number of lines when every one ends with a newline, starts with '{' and is at most
    max_line bytes long, its newline counted, as readline() counts (no empty line, no torn
    tail); else None. `data` is the file's bytes (mapped), looked at a block at a time."""
    if not len(data) or data[0] != ord("{") or data[-1] != 10:
        return None
    lines, previous = 0, -1   # previous: where the last newline seen is
    for offset in range(0, len(data), SCAN):
        block = data[offset:offset + SCAN]
        ends = np.flatnonzero(block == 10) + offset
        if not len(ends):
            if offset + len(block) - previous - 1 > max_line:
                return None
            continue
        starts = ends[:-1] + 1    # the lines after each newline but the last (the file ends with one)
        lengths = np.diff(ends, prepend=previous)
        if lengths.max() > max_line or not np.all(data[starts] == ord("{")):
            return None
        if previous >= 0 and data[previous + 1] != ord("{"):   # the first line begun in this block
            return None
        lines += len(ends)
        previous = int(ends[-1])
    return lines


def read(path: Path, max_line: int):
    """The file as a pyarrow Table of its samples (params and variant still nested), or None
    when the line-by-line reader must read it."""
    import mmap

    import pyarrow as pa
    import pyarrow.json as pj

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return None
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        # Mapped, not read: the page cache's copy is the one both passes look at.
        data = np.frombuffer(mapped, dtype=np.uint8)
        try:
            lines = _lines_whole(data, max_line)
            if lines is None:
                return None
            try:
                table = pj.read_json(pa.BufferReader(pa.py_buffer(mapped)),
                                     read_options=pj.ReadOptions(block_size=max(1 << 20, 2 * max_line)))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OSError):
                return None   # not JSON, not UTF-8, a column of two types: looked at record by record
        finally:
            del data   # the map closes only when no array points into it
    if table.num_rows != lines or not _samples(table):
        return None
    return table


def _no_nulls(table, name: str, *types) -> bool:
    if name not in table.column_names:
        return False
    column = table.column(name)
    return column.null_count == 0 and any(t(column.type) for t in types)


def _samples(table) -> bool:
    """Would _is_sample keep every record, and read_samples every batch and every value?"""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = pa.types
    if not all(_no_nulls(table, name, t.is_string, t.is_large_string) for name in NAMES):
        return False
    if not _no_nulls(table, "value", t.is_int64, t.is_float64) or not _no_nulls(table, "repetition", t.is_int64):
        return False
    if not pc.all(pc.is_in(table.column("better"), value_set=pa.array(["higher", "lower"]))).as_py():
        return False
    value = table.column("value")
    if t.is_float64(value.type) and not pc.all(pc.is_finite(value)).as_py():
        return False
    negative = pc.less(value, 0)
    if pc.any(negative).as_py():   # only a difference of two readings may be below zero
        metrics = pc.unique(pc.filter(table.column("metric"), negative)).to_pylist()
        if not all(is_difference(m) for m in metrics):
            return False
    return _fields(table) and _batches(table)


def _fields(table) -> bool:
    """The optional fields, of their types; nothing nested but the two dicts of a sample."""
    import pyarrow as pa

    t = pa.types
    for name in table.column_names:
        kind = table.schema.field(name).type
        if name in ("params", "variant"):
            if not (t.is_null(kind) or t.is_struct(kind)):
                return False
            if t.is_struct(kind) and any(t.is_struct(kind.field(i).type) for i in range(kind.num_fields)):
                return False   # a dict inside a parameter: the records keep it as the file has it
        elif name == "parity_ok":
            if not (t.is_null(kind) or t.is_boolean(kind)):
                return False
        elif name == "timestamp":   # a null is not a time, but a missing one is (read as NaT)
            if not _no_nulls(table, name, t.is_int64, t.is_float64, t.is_string, t.is_large_string):
                return False
        elif name not in NAMES and (t.is_nested(kind) or t.is_null(kind) or table.column(name).null_count):
            return False   # another field: kept only where null and missing cannot differ
    return True


def _batches(table) -> bool:
    """Every batch wholly written: as many lines of it as its batch_size says."""
    import pyarrow as pa

    t = pa.types
    if "batch" not in table.column_names:
        return True
    if not _no_nulls(table, "batch", t.is_string, t.is_large_string) or not _no_nulls(table, "batch_size", t.is_int64):
        return False
    counts = table.group_by("batch").aggregate([("batch_size", "count"), ("batch_size", "min"), ("batch_size", "max")])
    return (counts.column("batch_size_count").equals(counts.column("batch_size_min"))
            and counts.column("batch_size_count").equals(counts.column("batch_size_max")))


def frame(pd, tables, param: str, variant: str):
    """The tables as one DataFrame in load()'s columns: params and variant flattened into
    param_<name> and env_<name> columns, batch and batch_size dropped. None when the runs'
    columns do not unify (a parameter a number in one run and text in another)."""
    import pyarrow as pa

    flat = []
    for table in tables:
        table = table.drop_columns([c for c in ("batch", "batch_size") if c in table.column_names])
        table = table.flatten()
        names = []
        for name in table.column_names:
            if name.startswith("params."):
                name = param + name[len("params."):]
            elif name.startswith("variant."):
                name = variant + name[len("variant."):]
            names.append(name)
        table = table.rename_columns(names)
        flat.append(table.drop_columns([c for c in ("params", "variant") if c in table.column_names]))
    try:
        table = pa.concat_tables(flat, promote_options="permissive") if len(flat) > 1 else flat[0]
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    # Lists (redis' `tests`) as Python lists, as the records hold them.
    lists = [n for n in table.column_names if pa.types.is_list(table.schema.field(n).type)
             or pa.types.is_large_list(table.schema.field(n).type)]
    df = table.drop_columns(lists).to_pandas()
    # A parameter no sample gave a value (fio's rwmixread: null): missing, as a column of
    # samples with and without the key is in pandas (a float column of NaN).
    for name in table.column_names:
        if pa.types.is_null(table.schema.field(name).type) and name.startswith((param, variant)):
            df[name] = np.nan
    for name in lists:
        df[name] = pd.Series(table.column(name).to_pylist(), index=df.index, dtype=object)
    return df
