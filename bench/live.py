"""Runs alive now, found by their id alone.

A run holds an exclusive flock on <run>/.lock for its whole life (store.RunStore.acquire); the
lock is released when its holder dies, however it dies, so it tells a live run from a dead one.
But `bench cleanup` finds a run's containers, namespaces and scratch folders by the run id they
carry, not by its results folder (which any --out may hold). So each run's writer also names
its folder in a registry of the machine, REGISTRY/<run-id> -> <folder> (a symbolic link), and
anyone asks there whether a run id is alive: the link leads to the folder, the folder's lock
says. A link left by a run that died is harmless (its lock is free) and replaced by the next.

The registry is under /run (a tmpfs: no run outlives a reboot) for root, who runs the
benchmarks here; another user's is in the temporary folder, their own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import stat
import tempfile
from pathlib import Path

LOCK = ".lock"   # the writer's flock, in the run's folder


def registry() -> Path:
    if os.geteuid() == 0:
        return Path("/run/bench/runs")
    return Path(tempfile.gettempdir(), f"bench-runs-{os.geteuid()}")


@dataclasses.dataclass(frozen=True)
class Holder:
    """A live run: the pid of its writer and its results folder."""
    run_id: str
    pid: str
    folder: Path

    def __str__(self) -> str:
        return f"run {self.run_id} is in progress (pid {self.pid}, {self.folder})"


def lock_held(folder: Path) -> bool:
    """Does a live process hold the run's writer lock? (flock: released when its holder dies,
    however it dies, so a lock is never stale and a reused pid never passes for the run.)"""
    try:
        fd = os.open(Path(folder) / LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)   # closing releases our shared lock, if we got it


def lock_pid(folder: Path) -> str:
    """The pid the lock's holder wrote into it ('?' if it has not yet)."""
    try:
        found = (Path(folder) / LOCK).read_text().strip()
    except OSError:
        return "?"
    return found if found.isdigit() else "?"


def holder(run_id: str) -> Holder | None:
    """The live run of this id, if one is alive (registered, and its lock held)."""
    try:
        folder = Path(os.readlink(registry() / run_id))
    except OSError:
        return None
    if not lock_held(folder):
        return None
    return Holder(run_id, lock_pid(folder), folder)


def alive() -> dict[str, Holder]:
    """Every registered run that is alive, by run id."""
    try:
        names = [entry.name for entry in registry().iterdir()]
    except OSError:
        return {}
    found = {name: holder(name) for name in names}
    return {name: h for name, h in found.items() if h is not None}


def register(run_id: str, folder: Path) -> None:
    """Name this (locked) run's folder in the registry, in place of a dead run's link. The
    caller holds the folder's lock already, and has refused another live run of the same id."""
    where = registry()
    where.mkdir(parents=True, exist_ok=True, mode=0o755 if os.geteuid() == 0 else 0o700)
    found = where.lstat()
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.geteuid():
        # in a shared temporary folder, a path anyone could have made first: not trusted
        raise OSError(f"{where} is not a folder of this user's")
    link = where / run_id
    temporary = where / f".{run_id}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    os.symlink(Path(folder).resolve(), temporary)
    os.replace(temporary, link)   # atomic: a reader sees the old link or the new one


def unregister(run_id: str, folder: Path) -> None:
    """Remove the registry's link if it is still this folder's (a later run may own it)."""
    link = registry() / run_id
    with contextlib.suppress(OSError):
        if Path(os.readlink(link)) == Path(folder).resolve():
            link.unlink()


def prune() -> list[str]:
    """Remove the links of runs that are not alive (killed: their lock is free); the run ids."""
    gone = []
    try:
        entries = list(registry().iterdir())
    except OSError:
        return []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        with contextlib.suppress(OSError):
            target = os.readlink(entry)
            # the same link still, dead: a run of the same id may have just put its own there
            if not lock_held(Path(target)) and os.readlink(entry) == target:
                entry.unlink()
                gone.append(entry.name)
    return gone
