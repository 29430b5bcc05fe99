"""Environment kinds, discovered by their `kind` name as workloads are by their tool: a module
of this package that defines an Environment class with a `kind` of its own adds that kind, and
everything about it (its variant model, availability, provisioning, its leftovers for `bench
cleanup`, its checks for `bench doctor`). A duplicate kind name is an error. A kind whose
Python library is missing is reported as unavailable by `bench list` instead of breaking the
import of bench (its module imports the library only where it is used)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from .base import Environment, ExecResult, Leftover, Server, wait_for_port


def _discover() -> dict[str, type[Environment]]:
    found: dict[str, type[Environment]] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            # A kind is a class that names one itself (not a container class that inherits
            # Docker's), defined in this module, and meant for environments.yaml.
            if (issubclass(cls, Environment) and cls.__module__ == module.__name__ and "kind" in cls.__dict__
                    and cls.catalogued):
                if cls.kind in found:
                    raise RuntimeError(f"two environment modules claim the kind {cls.kind!r}: "
                                       f"{found[cls.kind].__module__} and {module.__name__}")
                found[cls.kind] = cls
    # In the order `bench cleanup` must remove what they leave (a domain before its disk, a
    # swarm before the containers its service would restart, containers before their daemon).
    return dict(sorted(found.items(), key=lambda item: (item[1].cleanup_order, item[0])))


KINDS: dict[str, type[Environment]] = _discover()

__all__ = ["Environment", "ExecResult", "Leftover", "Server", "KINDS", "wait_for_port"]
