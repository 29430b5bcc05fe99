"""Find and remove what killed runs left behind, by the run id every resource carries.

Each environment kind finds its own (`Environment.leftovers`: Docker's labelled containers,
volumes and networks and its second dockerds; a swarm by its marker; libvirt's domains by their
<metadata> and their disk folders; Podman's labelled containers and its services), in the order
the kinds give. Besides them, what is shared by several kinds or by the run itself: the
network namespaces of the run's own (a bridged guest's, a Docker client's), with their bridge
and tap carrying the run id in their alias; host scratch folders named
bench-<run-id>-<environment>-* (a host tool that outlived its run is found by its HOME, which is
such a folder), which hold a marker naming their run (bench/owner.py) that must name it exactly:
a prefix is not enough, and an unmarked folder is nobody's; the SSH control folder of a
--client-host run, bench-<run-id>-ssh-* in the temporary folder.
A run that is still going has the same marks: `bench cleanup` spares every run that is alive
(its writer holds its lock, bench/live.py), whatever it finds of it, and refuses --run-id of one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from . import live, owner
from .environments import KINDS
from .environments.base import Leftover

# Kinds whose leftovers come before the network namespaces (a guest holds its tap in one).
BEFORE_NAMESPACES = 20


def _scratch_leftovers(run_id: str | None, scratch: Path) -> list[Leftover]:
    """Scratch folders whose marker names the run exactly (never a prefix: run cx-2's are not cx's),
    after the host processes still running in them."""
    candidates = [f for f in sorted(scratch.glob(f"bench-{run_id}-*" if run_id else "bench-*")) if f.is_dir()]
    owned = owner.owned(candidates, run_id)
    folders = [Leftover("scratch folder", str(folder), who, lambda f=folder: shutil.rmtree(f, ignore_errors=True))
               for folder, who in owned]
    return _process_leftovers(dict(owned)) + folders


def _process_leftovers(folders: dict[Path, str]) -> list[Leftover]:
    """Host tools of a run that outlived it: every tool gets its environment's scratch folder as
    HOME (context.py), so a process whose HOME is a run's folder is that run's. Bench's own
    children die with it (a parent-death signal), but a tool a shell script started (xz behind
    its pipe) is the script's child and would run on to its end."""
    if not folders:
        return []
    homes = {f"HOME={folder}".encode(): who for folder, who in folders.items()}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "comm").read_text().strip()
        except OSError:  # gone, or not ours to read
            continue
        for variable in environ:
            if variable in homes:
                found.append(Leftover("process", f"{command} (pid {entry.name})", homes[variable],
                                      lambda pid=int(entry.name): _kill(pid)))
                break
    return found


def _kill(pid: int) -> None:
    import os
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _netns_leftovers(run_id: str | None) -> list[Leftover]:
    """Network namespaces of bridged guests (with their bridge and tap), and taps a run killed
    before it moved them into its namespace."""
    from .environments import netns

    prefix = f"{netns.PREFIX}{run_id}-" if run_id else netns.PREFIX
    found = []
    for name in netns.namespaces():
        if not name.startswith(prefix):
            continue
        who = netns.owner(name)
        if run_id is not None and who not in (None, run_id):
            continue  # another run whose id begins with this one's
        found.append(Leftover("network namespace", name, who or run_id or "?",
                              lambda n=name: netns.delete_namespace(n)))
    for tap, who in netns.stray_taps():
        if run_id is None or who == run_id:
            found.append(Leftover("tap", tap, who, lambda t=tap: netns.delete_link(t)))
    return found


def _ssh_leftovers(run_id: str | None) -> list[Leftover]:
    """The private folder of a --client-host run's SSH master socket (the master itself dies
    with bench: it is bench's child with a parent-death signal)."""
    from .environments.remote import control_folders

    return [Leftover("ssh control folder", str(folder), who, lambda f=folder: shutil.rmtree(f, ignore_errors=True))
            for folder, who in control_folders(run_id)]


def find(run_id: str | None = None, scratch: Path = Path("/var/tmp")) -> list[Leftover]:
    # Every kind's in its cleanup order; the namespaces after the guests whose taps are in
    # them; the host's scratch folders after the containers and daemons that used them.
    kinds = list(KINDS.values())
    early = [leftover for kind in kinds if kind.cleanup_order < BEFORE_NAMESPACES
             for leftover in kind.leftovers(run_id)]
    late = [leftover for kind in kinds if kind.cleanup_order >= BEFORE_NAMESPACES
            for leftover in kind.leftovers(run_id)]
    return early + _netns_leftovers(run_id) + late + _scratch_leftovers(run_id, scratch) + _ssh_leftovers(run_id)


def spare_live(leftovers: list[Leftover]) -> tuple[list[Leftover], dict[str, live.Holder]]:
    """What is truly left (of runs that are not alive), and the live runs spared, by run id."""
    running = live.alive()
    return ([leftover for leftover in leftovers if leftover.run_id not in running],
            {run_id: running[run_id] for run_id in sorted({l.run_id for l in leftovers} & running.keys())})
