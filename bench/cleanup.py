"""Find and remove what killed runs left behind, by the run id every resource carries.

Docker containers, volumes and networks carry the label bench.run_id; host scratch folders are
named bench-<run-id>-<environment>-*. A run that is still going has the same marks, so run
`bench cleanup` without --run-id only when no run is in progress.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

from .environments.docker import LABEL_RUN, DockerEnvironment


@dataclasses.dataclass(frozen=True)
class Leftover:
    kind: str       # container | volume | network | scratch folder
    name: str
    run_id: str
    remove: Callable[[], None] = dataclasses.field(compare=False, repr=False)


def _docker_leftovers(run_id: str | None) -> list[Leftover]:
    ok, _ = DockerEnvironment.availability({})
    if not ok:
        return []
    from .environments.docker import client

    c = client()
    selector = {"label": f"{LABEL_RUN}={run_id}" if run_id else LABEL_RUN}
    found = []
    for container in c.containers.list(all=True, filters=selector):
        found.append(Leftover("container", container.name, container.labels.get(LABEL_RUN, "?"),
                              lambda x=container: x.remove(force=True, v=True)))
    for volume in c.volumes.list(filters=selector):
        labels = volume.attrs.get("Labels") or {}
        found.append(Leftover("volume", volume.name, labels.get(LABEL_RUN, "?"),
                              lambda x=volume: x.remove(force=True)))
    for network in c.networks.list(filters=selector):
        found.append(Leftover("network", network.name, (network.attrs.get("Labels") or {}).get(LABEL_RUN, "?"),
                              lambda x=network: x.remove()))
    # Containers first: a volume or network in use cannot be removed.
    order = {"container": 0, "network": 1, "volume": 2}
    return sorted(found, key=lambda leftover: order[leftover.kind])


def _scratch_leftovers(run_id: str | None, scratch: Path) -> list[Leftover]:
    pattern = f"bench-{run_id}-*" if run_id else "bench-*"
    found = []
    for folder in sorted(scratch.glob(pattern)):
        if folder.is_dir():
            found.append(Leftover("scratch folder", str(folder), run_id or "?",
                                  lambda f=folder: shutil.rmtree(f, ignore_errors=True)))
    return found


def find(run_id: str | None = None, scratch: Path = Path("/var/tmp")) -> list[Leftover]:
    return _docker_leftovers(run_id) + _scratch_leftovers(run_id, scratch)
