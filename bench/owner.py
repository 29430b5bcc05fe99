"""Which run made a folder: a marker file inside it, written as soon as the folder exists.

Scratch folders (bench-<run-id>-<environment>-*) and VM disk folders are named after their run,
but a name cannot say whose a folder is: run `cx`'s environment `2-host` and run `cx-2`'s
`host` share a prefix, and a `bench-*` folder may be anyone's. `bench cleanup` takes a folder
only when its marker names the run exactly; a folder without one is not provably bench's and
is left alone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MARKER = ".bench-owner"


def mark(folder: str | os.PathLike, run_id: str) -> None:
    Path(folder, MARKER).write_text(json.dumps({"run_id": run_id, "pid": os.getpid()}) + "\n")


def owner(folder: str | os.PathLike) -> str | None:
    try:
        found = json.loads(Path(folder, MARKER).read_text()).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def owned(folders, run_id: str | None) -> list[tuple[Path, str]]:
    """(folder, owner) of the folders a run made: `run_id`'s exactly, or any run's if None."""
    out = []
    for folder in folders:
        who = owner(folder)
        if who is not None and (run_id is None or who == run_id):
            out.append((Path(folder), who))
    return out
