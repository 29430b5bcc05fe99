"""The data folder in use (workloads/: the catalogue, suites, environments, and the files they
name, such as a compose file or the web front's source). config.load() sets it when it reads a
catalogue; an environment or a workload that needs one of its files asks here, so that a file
named relative to the catalogue is found beside the catalogue that named it."""

from __future__ import annotations

from pathlib import Path

DEFAULT = Path(__file__).resolve().parent.parent / "workloads"
_root = DEFAULT


def use(root: Path) -> None:
    """The catalogue at root is the one in use (config.load)."""
    global _root
    _root = Path(root).resolve()


def path(name: str | Path) -> Path:
    """A file of the data folder: name as it is if absolute, else under the folder in use."""
    name = Path(name)
    return name if name.is_absolute() else _root / name
