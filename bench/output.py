"""Writing a file a user named (a report, an export): whole or not at all, and never onto
something that is not a file.

- a regular file (or a new one) is written to a temporary file beside it and renamed over it,
  so a reader, or a crash, sees the old file or the new one, never half of one; 0644;
- a symbolic link is followed: the file it points to is written, the link stays a link;
- a FIFO, a terminal or another special file (/dev/stdout, a pipe) is written through as it is:
  renaming onto it would replace the device node with a regular file;
- a folder, or a place that cannot be written (read-only, full, a file where a folder should
  be), is a one-line BenchError naming the path; missing folders on the way are made.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import BenchError


@contextlib.contextmanager
def output_file(target: str | os.PathLike, binary: bool = False) -> Iterator[IO]:
    path = Path(target)
    mode = "wb" if binary else "w"
    try:
        if path.is_symlink():
            path = path.resolve()
        if path.is_dir():
            raise BenchError(f"{target}: is a folder; give a file name (-o FILE)")
        if path.exists() and not stat.S_ISREG(path.stat().st_mode):
            with open(path, mode) as f:      # a FIFO or a device: through it, as a shell's > would
                yield f
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except FileExistsError:
        raise BenchError(f"cannot write {target}: a file is where a folder of its path should be") from None
    except OSError as e:
        raise BenchError(f"cannot write {target}: {e.strerror}") from None
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        raise BenchError(f"cannot write {target}: {e.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
