"""Find and remove what killed runs left behind, by the run id every resource carries.

Docker containers, volumes and networks carry the label bench.run_id; libvirt domains carry
it in their <metadata>, and their disks are in /var/lib/libvirt/images/bench-<run-id>-<env>;
a bridged guest's network namespace is bench-<run-id>-<env>, its bridge and tap carry the run id
in their alias;
a second dockerd (daemon-wide Docker variants) has its folder in /var/lib/bench-dockerd/ with an
owner.json naming the run, and its bridge carries the run id in its alias;
host scratch folders are named bench-<run-id>-<environment>-* (a host tool that outlived its run
is found by its HOME, which is such a folder) and VM disk folders
bench-<run-id>-<environment>, and both hold a marker naming their run (bench/owner.py), which
must name it exactly: a prefix is not enough, and an unmarked folder is nobody's; the SSH control folder of a
--client-host run bench-<run-id>-ssh-* in the temporary folder; a run that made a swarm left a
marker file named after its id (bench/environments/swarm.py), and only such a swarm is left.
A run that is still going has the same marks, so run
`bench cleanup` without --run-id only when no run is in progress.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

from . import owner
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
                              lambda x=container: _gone_is_fine(x.remove, force=True, v=True)))
    for volume in c.volumes.list(filters=selector):
        labels = volume.attrs.get("Labels") or {}
        found.append(Leftover("volume", volume.name, labels.get(LABEL_RUN, "?"),
                              lambda x=volume: _gone_is_fine(x.remove, force=True)))
    for network in c.networks.list(filters=selector):
        found.append(Leftover("network", network.name, (network.attrs.get("Labels") or {}).get(LABEL_RUN, "?"),
                              lambda x=network: _gone_is_fine(x.remove)))
    # Containers first: a volume or network in use cannot be removed.
    order = {"container": 0, "network": 1, "volume": 2}
    return sorted(found, key=lambda leftover: order[leftover.kind])


def _gone_is_fine(remove: Callable[..., None], **kwargs) -> None:
    """A swarm task's container goes with its service, before its own leftover comes up."""
    import docker.errors

    try:
        remove(**kwargs)
    except docker.errors.NotFound:
        pass


def _swarm_leftovers(run_id: str | None) -> list[Leftover]:
    """A swarm a killed run made (by its marker): its service, the swarm, docker_gwbridge if the
    run created it, its veth. A swarm that is not the marker's run's own is never left."""
    from .environments import swarm

    found = swarm.markers(run_id)
    if not found:
        return []
    ok, _ = DockerEnvironment.availability({})
    if not ok:
        return []
    from .environments.docker import client

    c = client()
    return [Leftover("swarm", f"{'made by the run' if swarm.made_by(m, c) else 'marker only'} ({m.veth})",
                     m.run_id, lambda m=m: swarm.undo(m, client()))
            for m in found]


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


def _libvirt_leftovers(run_id: str | None) -> list[Leftover]:
    """Domains whose bench metadata names a run, and the folders of their disks."""
    import xml.etree.ElementTree as ET

    from .environments import libvirt as lv
    from .environments.domain import METADATA_NS

    ok, _ = lv.LibvirtEnvironment.availability({"accel": "tcg"}, allow_tcg=True)  # reachable? (no KVM probe)
    if not ok:
        return []
    import libvirt

    conn = lv._connect()
    found = []
    for dom in conn.listAllDomains():
        try:
            meta = ET.fromstring(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS))
        except libvirt.libvirtError:
            continue  # not one of ours
        who = meta.get("id", "?")
        if run_id is None or who == run_id:
            found.append(Leftover("domain", dom.name(), who, lambda d=dom: _remove_domain(d)))
    prefix = f"bench-{run_id}-" if run_id else "bench-"
    if lv.IMAGES.is_dir():
        for folder, who in owner.owned(sorted(lv.IMAGES.glob(f"{prefix}*")), run_id):
            found.append(Leftover("VM disk folder", str(folder), who,
                                  lambda f=folder: shutil.rmtree(f, ignore_errors=True)))
    return found


def _remove_domain(dom) -> None:
    """Destroy (transient) or undefine a domain; one that vanished since it was listed (its QEMU
    ended, another cleanup got there first) is already what we want."""
    import libvirt

    try:
        dom.destroy() if dom.isActive() else dom.undefine()
    except libvirt.libvirtError as e:
        if e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise


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


def _dockerd_leftovers(run_id: str | None) -> list[Leftover]:
    """Second dockerds (stopped by their pid, their folder removed) and their bridges."""
    from .environments import dockerd

    found = [Leftover(kind, name, who, remove) for kind, name, who, remove in dockerd.leftovers(run_id)]
    # The daemon before its bridge: dockerd holds the bridge while it runs.
    return sorted(found, key=lambda leftover: leftover.kind == "bridge")


def find(run_id: str | None = None, scratch: Path = Path("/var/tmp")) -> list[Leftover]:
    # Domains before their disks and their namespaces, containers before their volumes.
    # A swarm before the containers: its service owns its task's container and would restart it.
    # Containers (of a second dockerd too) before that daemon.
    return (_libvirt_leftovers(run_id) + _netns_leftovers(run_id) + _swarm_leftovers(run_id)
            + _docker_leftovers(run_id) + _dockerd_leftovers(run_id)
            + _scratch_leftovers(run_id, scratch) + _ssh_leftovers(run_id))
