"""A second Docker daemon of one environment of one run, for the variants that are daemon-wide:
a storage driver (vfs, btrfs, zfs, devicemapper), user-namespace remapping, or an OCI runtime
registered with it (gVisor's runsc): the main daemon's configuration is the user's, not bench's.
The main dockerd keeps overlay2 and its own containers; this one gets a folder of its own,
/var/lib/bench-dockerd/<12 hex digits of a hash of run id and environment>/ (short, for the unix
sockets under it), holding its data root, exec root, API socket, pid file, log and an
owner.json, written first, that names the run and the environment. It must not fight the main daemon over the
network: it runs with --iptables=false on a Linux bridge of its own (private address, the run id
in its alias) instead of docker0. Ports are still published on 127.0.0.1, by docker-proxy (the
userland proxy needs no iptables), which is also the path a loopback client takes to the main
daemon's containers.

It is started, waited for and stopped by its pid as every daemon of bench's own is
(private_daemon.py); on SIGTERM dockerd stops its containers and its containerd. `bench cleanup`
finds the folder and the bridge of a killed run by their run id and does the same.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
from pathlib import Path

from .. import settings
from ..errors import BenchError
from .netns import host_networks, ip
from .private_daemon import PrivateDaemon, cmdline, owned_folders, stop_pid
from .private_daemon import folder_name as _hashed

BRIDGE_PREFIX = "bdkr"             # + 10 hex digits: interface names are at most 15 characters
ALIAS_PREFIX = "bench dockerd run "
# Candidate /24s for the bridges: private, and away from docker0 (172.17/16), libvirt's default
# (192.168.122/24) and the bridged guests' (10.213.0/24, only inside their namespaces).
SUBNETS = ipaddress.ip_network("10.214.0.0/16")
STORAGE_DRIVERS = ("vfs", "btrfs", "zfs", "devicemapper")
STOP_TIMEOUT = 60.0
SOCKET_PATH_MAX = 100              # sun_path is 108 bytes; containerd adds ".ttrpc" to its socket


def _fs_type(path: Path) -> str:
    """The file system type of path's nearest existing ancestor (`stat -f`)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    r = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, timeout=10)
    return r.stdout.strip() if r.returncode == 0 else "unknown"


def root() -> Path:
    """Where a run's second dockerds keep their folders (BENCH_DOCKERD_ROOT)."""
    return settings.current().dockerd_root


def availability(storage_driver: str | None, userns_remap: bool,
                 runtimes: dict[str, str] | None = None) -> tuple[bool, str]:
    """Whether a second daemon with these options can run here. Makes nothing, never raises."""
    try:
        if os.geteuid() != 0:
            return False, "a second dockerd needs root"
        for program in ("dockerd", "ip"):
            if shutil.which(program) is None:
                return False, f"{program} is not on PATH (apt-get install docker.io iproute2)"
        said = []
        if storage_driver == "btrfs" and (fs := _fs_type(root())) != "btrfs":
            return False, f"btrfs needs the daemon's data root ({root()}) on a btrfs file system; it is on {fs}"
        if storage_driver == "zfs":
            if shutil.which("zfs") is None:
                return False, "zfs needs the ZFS utilities (zfsutils-linux) and a ZFS data set"
            if (fs := _fs_type(root())) != "zfs":
                return False, f"zfs needs the daemon's data root ({root()}) on a ZFS data set; it is on {fs}"
        if storage_driver == "devicemapper":
            # loop-lvm (the only mode that needs no prepared disk) is deprecated, slow, and
            # leaves loop and device-mapper devices behind a killed run.
            return False, ("devicemapper needs a direct-lvm thin pool prepared by the administrator "
                           "(dm.thinpooldev); bench does not make one, and it is removed from Docker 25")
        if storage_driver:
            said.append(f"a second dockerd with storage driver {storage_driver}")
        if userns_remap:
            if not Path("/etc/subuid").exists() and shutil.which("useradd") is None:
                return False, "--userns-remap=default needs /etc/subuid or useradd"
            said.append("user namespaces remapped to dockremap (dockerd creates that user and its "
                        "/etc/subuid range on first use)")
        for name, path in (runtimes or {}).items():
            if shutil.which(path) is None:
                return False, f"the OCI runtime {name} ({path}) is not on PATH"
            said.append(f"a second dockerd with the OCI runtime {name} ({shutil.which(path)})")
        return True, "; ".join(said) or "a second dockerd"
    except Exception as e:  # availability never raises
        return False, f"cannot tell whether a second dockerd can run: {type(e).__name__}: {e}"


def _free_subnet(seed: str) -> ipaddress.IPv4Network:
    """A /24 of SUBNETS that no interface of the host is on, starting at one the seed picks."""
    used = host_networks()
    subnets = list(SUBNETS.subnets(new_prefix=24))
    start = int(hashlib.sha256(seed.encode()).hexdigest(), 16) % len(subnets)
    for i in range(len(subnets)):
        candidate = subnets[(start + i) % len(subnets)]
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise BenchError(f"no free /24 in {SUBNETS} for a second dockerd's bridge")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _unmount_under(folder: Path) -> None:
    """Mounts a killed daemon left under its folder (network namespaces, overlay layers),
    deepest first, so that removing the folder cannot reach into a mounted file system."""
    prefix = str(folder) + "/"
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    points = [line.split()[4] for line in lines if len(line.split()) > 4]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=30)


def processes_of(folder: Path) -> list[int]:
    """Pids whose command line names the folder: the daemon, its containerd, their shims."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and f"{folder}/" in cmdline(int(entry.name)):
            found.append(int(entry.name))
    return found


def bridge_name(run_id: str, environment: str) -> str:
    return BRIDGE_PREFIX + hashlib.sha256(f"{run_id}/{environment}".encode()).hexdigest()[:10]


def folder_name(run_id: str, environment: str) -> str:
    """The daemon's folder's name (a default run id, 20261202-065541-variants-f10a, and a long
    environment name are too long for containerd's sockets under it). Whose it is, owner.json says."""
    return _hashed(f"{run_id}/{environment}")


class Dockerd(PrivateDaemon):
    """The second daemon of one environment of one run."""

    what = "the second dockerd"
    socket_name = "docker.sock"
    log_name = "dockerd.log"

    def __init__(self, run_id: str, environment: str, storage_driver: str | None = None,
                 userns_remap: bool = False, runtimes: dict[str, dict] | None = None):
        super().__init__(run_id, environment, root() / folder_name(run_id, environment))
        self.storage_driver = storage_driver
        self.userns_remap = userns_remap
        self.runtimes = runtimes or {}  # name -> {"path", "runtimeArgs"}, as daemon.json has them
        self.bridge = bridge_name(run_id, environment)

    def argv(self, bridge_cidr: str) -> list[str]:
        argv = ["dockerd",
                "--data-root", str(self.folder / "data"),
                "--exec-root", str(self.folder / "exec"),
                "--host", self.base_url,
                "--pidfile", str(self.folder / "docker.pid"),
                # Not the main daemon's docker0 and iptables chains: its own bridge, no rules.
                "--bridge", self.bridge, "--iptables=false", "--ip-masq=false",
                "--userland-proxy=true"]
        if self.storage_driver:
            argv += ["--storage-driver", self.storage_driver]
        if self.userns_remap:
            argv += ["--userns-remap=default"]
        if self.runtimes:
            # Runtime arguments can only be given in a configuration file; it is the daemon's
            # own, so the main daemon's /etc/docker/daemon.json is not read by this one.
            argv += ["--config-file", str(self.folder / "daemon.json")]
        return argv

    def start(self) -> None:
        if len(str(self.folder / "exec" / "containerd" / "containerd.sock.ttrpc")) > SOCKET_PATH_MAX:
            raise BenchError(f"BENCH_DOCKERD_ROOT {root()} is too long a path for the second dockerd's unix "
                             f"sockets under it (at most {SOCKET_PATH_MAX - 60} characters)")
        self.make_folder(bridge=self.bridge)
        if self.runtimes:
            (self.folder / "daemon.json").write_text(json.dumps({"runtimes": self.runtimes}, indent=2))
        subnet = _free_subnet(f"{self.run_id}/{self.environment}")
        cidr = f"{next(subnet.hosts())}/{subnet.prefixlen}"
        ip("link", "add", self.bridge, "type", "bridge")
        ip("link", "set", self.bridge, "alias", ALIAS_PREFIX + self.run_id)
        ip("addr", "add", cidr, "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        self.launch(self.argv(cidr))

    def stop(self) -> None:
        """Stop the daemon (it stops its containers and containerd), remove its bridge and its
        folder. Safe to call twice, and on a daemon that never started."""
        if not self.made:
            return
        stop_folder(self.folder, self.pid)
        delete_bridge(self.bridge)
        self.made = False


def stop_folder(folder: Path, pid: int | None = None) -> None:
    """Everything a second daemon with this folder runs or holds, gone: its containers (asked
    of the daemon while it still answers), the daemon, its containerd and shims, the folder."""
    marker = f"{folder}/"  # not a folder whose name merely begins with this one's
    socket = folder / "docker.sock"
    if socket.exists():
        try:
            import docker

            c = docker.DockerClient(base_url=f"unix://{socket}", timeout=30)
            try:
                for container in c.containers.list(all=True):
                    container.remove(force=True, v=True)
            finally:
                c.close()
        except Exception:
            pass  # a daemon that does not answer is stopped by its pid below
    stop_pid(pid or _read_pid(folder / "docker.pid"), marker, STOP_TIMEOUT)
    stop_pid(_read_pid(folder / "exec" / "containerd" / "containerd.pid"), marker, 20)
    for leftover in processes_of(folder):  # shims of a daemon that was SIGKILLed
        stop_pid(leftover, marker, 10)
    _unmount_under(folder)
    shutil.rmtree(folder, ignore_errors=True)
    if folder.exists():
        raise BenchError(f"could not remove {folder}")


def delete_bridge(name: str) -> None:
    if ip("link", "show", name, check=False).returncode == 0:
        ip("link", "delete", name)


def leftovers(run_id: str | None) -> list[tuple[str, str, str, object]]:
    """(kind, name, run id, remove) of second daemons' folders and bridges a run left."""
    found: list[tuple[str, str, str, object]] = []
    for folder, owner in owned_folders(root()):
        if owner is None:
            # Killed between the folder and its owner.json (or a folder of an older bench,
            # named <run-id>-<environment>): the name is all there is to go by.
            owner = run_id if run_id and folder.name.startswith(f"{run_id}-") else "?"
        if run_id is None or owner == run_id:
            found.append(("second dockerd", str(folder), owner, lambda f=folder: stop_folder(f)))
    r = ip("-j", "link", "show", "type", "bridge", check=False)
    try:
        links = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else []
    except ValueError:
        links = []
    for link in links:
        name, alias = link.get("ifname", ""), link.get("ifalias", "")
        if name.startswith(BRIDGE_PREFIX) and alias.startswith(ALIAS_PREFIX):
            owner = alias[len(ALIAS_PREFIX):]
            if run_id is None or owner == run_id:
                found.append(("bridge", name, owner, lambda n=name: delete_bridge(n)))
    return found
