"""The workload image: one Debian package set -> a root file system -> a Docker image (and
a VM disk), so that every environment runs the very same binaries.

No registry is reachable from the machines this runs on, and the point is identical binaries
anyway: the root file system is made with debootstrap from Debian's own packages, of the
release the host runs, and imported into Docker. It is cached under the hash of its recipe
(release, mirror, components, packages): a second build with nothing changed does nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import settings
from .errors import BenchError

# Bump when the way the root file system is made changes, so old caches are not reused.
RECIPE_VERSION = 3  # 3: the release's -updates and -security suites applied after debootstrap
IMAGE_REPOSITORY = "bench-workload"
LABEL_RECIPE = "bench.recipe"
# What a workload needs besides its tools: sh, coreutils' timeout, ps, ip, dpkg-query.
BASE_PACKAGES = ("procps", "iproute2", "numactl")  # numactl: the study's memory interleave on NUMA hosts
# What a VM needs to boot the same root file system: a Debian kernel (its initramfs is made
# when it is installed), the guest agent the harness talks to, and tini to reap as PID 1.
# Docker ignores them; they are in the one recipe so that both run the very same files.
# Two kernel flavours of the same Debian kernel version: `cloud` (the guests' default, slim,
# paravirtual drivers only) and `generic`, for the guests with emulated devices the cloud
# flavour has no driver for (e1000, rtl8139, AHCI: see KERNEL_FLAVOURS and libvirt.py).
VM_PACKAGES = ("linux-image-cloud-amd64", "linux-image-amd64", "initramfs-tools", "qemu-guest-agent", "tini",
               "kmod")
KERNEL_FLAVOURS = {"cloud": "-cloud-amd64", "generic": "-amd64"}  # flavour -> end of its release name
VM_DISK_SIZE = "3G"

# PID 1 of a bench VM: mount what the tools need, configure the network, mount the data disk,
# start the guest agent. Nothing else runs in the guest to disturb a measurement. The network is
# QEMU's user-mode net (slirp's fixed addresses) unless the kernel command line has
# bench.ip=ADDR/LEN: a bridge in the run's network namespace, with no DHCP and no way out.
GUEST_INIT = """#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /run /tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -o remount,rw /
hostname bench-guest
for m in virtio_net virtio_console virtio_blk; do modprobe "$m" 2>/dev/null; done
ip link set lo up
addr=10.0.2.15/24 gateway=10.0.2.2
for arg in $(cat /proc/cmdline); do
    case "$arg" in bench.ip=*) addr=${arg#bench.ip=} gateway= ;; esac
done
for dev in /sys/class/net/*; do
    name=${dev##*/}
    [ "$name" = lo ] && continue
    ip link set "$name" up
    ip addr add "$addr" dev "$name"
    [ -n "$gateway" ] && ip route add default via "$gateway"
    break
done
mkdir -p /bench/work
# fio's data disk, by its label: /dev/vdb on virtio-blk, /dev/sdb on SATA or IDE
mount -o noatime LABEL=benchdata /bench/work
for i in $(seq 100); do
    for p in /sys/class/virtio-ports/*; do
        [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && port=/dev/${p##*/}
    done
    [ -n "$port" ] && [ -e "$port" ] && break
    sleep 0.1
done
echo "bench-init: guest agent on $port"
exec tini -s -- qemu-ga -m virtio-serial -p "$port"
"""
BUILD_TIMEOUT = 1800.0


@dataclasses.dataclass(frozen=True)
class Recipe:
    release: str
    mirror: str
    components: tuple[str, ...]
    packages: tuple[str, ...]
    security_mirror: str = "http://deb.debian.org/debian-security"

    @classmethod
    def of(cls, s: settings.Settings) -> "Recipe":
        """The recipe the settings ask for: their release and mirrors, and the workloads'
        packages with what every image needs besides."""
        return cls(release=s.image_release, mirror=s.image_mirror,
                   components=("main", "non-free"),  # netperf is in non-free
                   packages=tuple(sorted(set(BASE_PACKAGES) | set(VM_PACKAGES) | set(s.tool_packages))),
                   security_mirror=s.image_security_mirror)

    @property
    def digest(self) -> str:
        doc = json.dumps({"version": RECIPE_VERSION, "init": GUEST_INIT, **dataclasses.asdict(self)},
                         sort_keys=True)
        return hashlib.sha256(doc.encode()).hexdigest()[:12]

    @property
    def tag(self) -> str:
        return f"{IMAGE_REPOSITORY}:{self.digest}"

    @property
    def rootfs(self) -> Path:
        return cache() / f"rootfs-{self.digest}.tar"


def cache() -> Path:
    """Where built images, VM disks and boot files are kept (BENCH_CACHE_DIR)."""
    return settings.current().cache_dir


_recipes: dict[settings.Settings, Recipe] = {}


def recipe() -> Recipe:
    """The workload image's recipe under the settings in use: made once, then the same object."""
    s = settings.current()
    if not s.tool_packages:
        raise RuntimeError("the settings in use name no workload's packages: set them with "
                           "settings.use(Settings.from_environ(..., tool_packages)) before using the image")
    if s not in _recipes:
        _recipes[s] = Recipe.of(s)
    return _recipes[s]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _building(recipe: Recipe, what: str):
    """Held while one process makes one of the recipe's cached files. Two runs started together
    on a machine without the image (or a run and `bench image build`) would each spend minutes
    and both cores making the same file: the second waits for the first, then finds it made.
    (flock: released when its holder dies, however it dies.)"""
    cache().mkdir(parents=True, exist_ok=True)
    with open(cache() / f".{what}-{recipe.digest}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(f"waiting for another bench making the {what} of {recipe.digest}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build_rootfs(recipe: Recipe, force: bool = False) -> Path:
    """debootstrap the package set into a tar file in the cache (once per recipe)."""
    if recipe.rootfs.exists() and not force:
        return recipe.rootfs
    with _building(recipe, "rootfs"):
        if recipe.rootfs.exists() and not force:   # made while this one waited
            return recipe.rootfs
        return _build_rootfs(recipe)


def _build_rootfs(recipe: Recipe) -> Path:
    if shutil.which("debootstrap") is None:
        raise BenchError("debootstrap is missing: apt-get install debootstrap (or run scripts/setup.sh)")
    build = Path(tempfile.mkdtemp(prefix=f"build-{recipe.digest}-", dir=cache()))
    log = cache() / f"rootfs-{recipe.digest}.log"
    _say(f"building the workload root file system {recipe.digest} with debootstrap "
         f"({recipe.release}, {len(recipe.packages)} packages; a few minutes, once); log: {log}")
    start = time.monotonic()
    try:
        argv = ["debootstrap", "--variant=minbase", f"--components={','.join(recipe.components)}",
                f"--include={','.join(recipe.packages)}", recipe.release, str(build / "root"), recipe.mirror]
        with open(log, "w") as f:
            try:
                r = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise BenchError(f"debootstrap took over {BUILD_TIMEOUT:.0f} s; see {log}") from None
        if r.returncode != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:]
            raise BenchError(f"debootstrap failed ({tail[0] if tail else 'no output'}); see {log}")
        root = build / "root"
        with open(log, "a") as f:
            _apply_updates(root, recipe, f)
        # Package caches are not part of what is measured; they only make the image larger.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for p in (root / junk).glob("*"):
                if p.is_file():
                    p.unlink()
        (root / "etc" / "bench-recipe.json").write_text(json.dumps(dataclasses.asdict(recipe), indent=2))
        init = root / "usr" / "local" / "sbin" / "bench-init"
        init.write_text(GUEST_INIT)
        init.chmod(0o755)
        partial = build / "rootfs.tar"
        subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."], check=True)
        os.replace(partial, recipe.rootfs)  # atomic: a killed build never leaves a half tar behind
    finally:
        shutil.rmtree(build, ignore_errors=True)
    _say(f"root file system {recipe.digest} built in {time.monotonic() - start:.0f} s")
    return recipe.rootfs


def _apply_updates(root: Path, recipe: Recipe, log) -> None:
    """Bring the root file system to the release's current point and security updates, as a
    maintained host has them: debootstrap takes only the release's original packages, and a
    host with `redis-server 7.0.15-1~deb12u10` against an image with `~deb12u7` would not run
    the same binaries. The image is as current as the day it was built (`bench image build
    --force` refreshes it); a run flags any tool whose version differs from the host's."""
    components = " ".join(recipe.components)
    (root / "etc" / "apt" / "sources.list").write_text(
        f"deb {recipe.mirror} {recipe.release} {components}\n"
        f"deb {recipe.mirror} {recipe.release}-updates {components}\n"
        f"deb {recipe.security_mirror} {recipe.release}-security {components}\n")
    policy = root / "usr" / "sbin" / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")  # no service starts inside the chroot
    policy.chmod(0o755)
    resolv = root / "etc" / "resolv.conf"
    had_resolv = resolv.exists() or resolv.is_symlink()
    if not had_resolv:
        shutil.copy("/etc/resolv.conf", resolv)
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    try:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
        for argv in (["apt-get", "update", "-q"],
                     ["apt-get", "-y", "-q", "-o", "Dpkg::Options::=--force-confold", "upgrade"]):
            try:
                r = subprocess.run(["chroot", str(root), *argv], stdout=log, stderr=subprocess.STDOUT,
                                   env=env, timeout=BUILD_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise BenchError(f"`{' '.join(argv)}` in the image took over {BUILD_TIMEOUT:.0f} s") from None
            if r.returncode != 0:
                raise BenchError(f"`{' '.join(argv)}` in the image failed (status {r.returncode}); see {log.name}")
    finally:
        subprocess.run(["umount", str(root / "proc")], check=False)
        policy.unlink(missing_ok=True)
        if not had_resolv:
            resolv.unlink(missing_ok=True)


def docker_image(client, recipe: Recipe, force: bool = False, base_url: str | None = None):
    """The Docker image of the recipe, imported from the root file system if it is not there;
    base_url names the daemon when it is not the main one (a run's second dockerd)."""
    import docker.errors

    if not force:
        try:
            return client.images.get(recipe.tag)
        except docker.errors.ImageNotFound:
            pass
    tar = build_rootfs(recipe, force=force)
    with _building(recipe, "docker-import"):   # one import at a time: each streams the whole tar
        if not force:
            try:
                return client.images.get(recipe.tag)   # imported while this one waited
            except docker.errors.ImageNotFound:
                pass
        return _import(client, recipe, tar, base_url)


def _import(client, recipe: Recipe, tar: Path, base_url: str | None):
    import docker

    _say(f"importing {tar.name} into Docker as {recipe.tag}")
    # Its own client: streaming half a gigabyte may outlast the usual API timeout.
    importer = (docker.DockerClient(base_url=base_url, timeout=BUILD_TIMEOUT) if base_url
                else docker.from_env(timeout=BUILD_TIMEOUT))
    try:
        answer = importer.api.import_image_from_file(
            str(tar), repository=IMAGE_REPOSITORY, tag=recipe.digest,
            changes=[f"LABEL {LABEL_RECIPE}={recipe.digest}", 'CMD ["sleep", "infinity"]'])
    finally:
        importer.close()
    try:
        return client.images.get(recipe.tag)
    except docker.errors.ImageNotFound:
        pass
    # Podman's Docker-compatible API ignores the tag of an import (it names the image
    # bench-workload:latest): tag the imported image by the id the import answered with.
    imported = client.images.get(_imported_id(answer))
    imported.tag(IMAGE_REPOSITORY, recipe.digest)
    for name in imported.tags:
        if name.endswith(f"{IMAGE_REPOSITORY}:latest"):
            client.images.remove(name, noprune=True)
    return client.images.get(recipe.tag)


def _imported_id(answer: str) -> str:
    """The image id in an import's JSON answer (one object a line; the last that has one)."""
    found = ""
    for line in str(answer).splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict):
            found = message.get("id") or message.get("status", "") if str(message.get("status", "")).startswith(
                "sha256:") or message.get("id") else found
    if not found:
        raise BenchError(f"the image import answered without an image id: {str(answer)[:200]}")
    return found


def vm_kernel(recipe: Recipe, flavour: str = "cloud") -> tuple[Path, Path]:
    """The image's own kernel and initramfs of a flavour (KERNEL_FLAVOURS), taken out of its
    root file system for direct boot."""
    kernel, initrd, _ = _vm_boot_files(recipe, flavour)
    return kernel, initrd


def vm_kernel_config(recipe: Recipe, flavour: str = "cloud") -> dict[str, str]:
    """The build configuration of the image's kernel of a flavour: {"CONFIG_E1000": "m", ...}
    (options that are not set are absent). Says which device drivers a guest can have."""
    config = _vm_boot_files(recipe, flavour)[2]
    options = {}
    for line in config.read_text().splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            key, value = line.split("=", 1)
            options[key] = value
    return options


def _vm_boot_files(recipe: Recipe, flavour: str) -> tuple[Path, Path, Path]:
    if flavour not in KERNEL_FLAVOURS:
        raise BenchError(f"unknown kernel flavour {flavour!r}: one of {', '.join(KERNEL_FLAVOURS)}")
    folder = cache() / f"vm-{recipe.digest}"
    files = tuple(folder / f"{stem}-{flavour}" for stem in ("vmlinuz", "initrd.img", "config"))
    if all(f.exists() for f in files):
        return files
    tar = build_rootfs(recipe)
    with _building(recipe, "vm-files"):
        if not all(f.exists() for f in files):   # not made while this one waited
            _extract_boot_files(tar, folder, flavour, files)
    return files


def _extract_boot_files(tar: Path, folder: Path, flavour: str, files: tuple[Path, Path, Path]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    listing = subprocess.run(["tar", "-tf", str(tar), "./boot"], capture_output=True, text=True, check=True)
    names = listing.stdout.split()
    releases = [Path(n).name[len("vmlinuz-"):] for n in names if Path(n).name.startswith("vmlinuz-")]
    ours = [r for r in releases if _flavour_of(r) == flavour]
    if not ours:
        raise BenchError(f"{tar} has no {flavour} kernel in /boot; rebuild with `bench image build --force`")
    members = [f"./boot/{stem}-{max(ours)}" for stem in ("vmlinuz", "initrd.img", "config")]
    if not all(m in names for m in members):
        raise BenchError(f"{tar} lacks one of {', '.join(members)}; rebuild with `bench image build --force`")
    for member, target in zip(members, files):
        part = _part(target)
        with open(part, "wb") as f:
            subprocess.run(["tar", "-xOf", str(tar), member], stdout=f, check=True)
        os.replace(part, target)


def _flavour_of(release: str) -> str | None:
    """"6.1.0-50-cloud-amd64" -> cloud, "6.1.0-50-amd64" -> generic: the longest matching end
    decides, since every cloud release also ends in "-amd64"."""
    ends = [(len(end), name) for name, end in KERNEL_FLAVOURS.items() if release.endswith(end)]
    return max(ends)[1] if ends else None


def _part(target: Path) -> Path:
    """A file to write `target` into before renaming it into place: one per process, since two
    runs (or a run and `bench image build`) may make the same cached file at the same time."""
    return target.with_name(f"{target.name}.{os.getpid()}.part")


def vm_disk(recipe: Recipe, disk_format: str = "raw") -> Path:
    """The root file system as an ext4 disk image (made without mounting: mke2fs -d reads the
    tar), and a qcow2 copy of it when asked for. Runs copy it; the cached one is never booted."""
    folder = cache() / f"vm-{recipe.digest}"
    raw = folder / "root.raw"
    if not raw.exists():
        tar = build_rootfs(recipe)
        with _building(recipe, "vm-files"):
            if not raw.exists():   # not made while this one waited
                _make_disk(tar, folder, raw)
    if disk_format == "raw":
        return raw
    qcow2 = folder / "root.qcow2"
    if not qcow2.exists():
        with _building(recipe, "vm-files"):
            if not qcow2.exists():
                part = _part(qcow2)
                subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(part)], check=True,
                               capture_output=True)
                os.replace(part, qcow2)
    return qcow2


def _make_disk(tar: Path, folder: Path, raw: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _say(f"making the VM disk {raw} from {tar.name}")
    part = _part(raw)
    # mke2fs reads a folder (tar input needs e2fsprogs 1.47.1, newer than Debian 12's).
    tree = Path(tempfile.mkdtemp(prefix="vm-root-", dir=folder))
    try:
        subprocess.run(["tar", "-C", str(tree), "--numeric-owner", "-xf", str(tar)], check=True)
        r = subprocess.run(["mke2fs", "-q", "-t", "ext4", "-L", "benchroot", "-d", str(tree), str(part),
                            VM_DISK_SIZE], capture_output=True, text=True)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    if r.returncode != 0:
        part.unlink(missing_ok=True)
        raise BenchError(f"mke2fs could not make the VM disk: {r.stderr.strip()}")
    os.replace(part, raw)
