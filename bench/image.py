"""The workload image: one Debian package set -> a root file system -> a Docker image (and, later,
a VM disk), so that every environment runs the very same binaries.

No registry is reachable from the machines this runs on, and the point is identical binaries
anyway: the root file system is made with debootstrap from Debian's own packages, of the
release the host runs, and imported into Docker. It is cached under the hash of its recipe
(release, mirror, components, packages): a second build with nothing changed does nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .errors import BenchError
from .workloads import TOOLS

# Bump when the way the root file system is made changes, so old caches are not reused.
RECIPE_VERSION = 1
IMAGE_REPOSITORY = "bench-workload"
LABEL_RECIPE = "bench.recipe"
CACHE = Path(os.environ.get("BENCH_CACHE_DIR", "/var/cache/bench"))
# What a workload needs besides its tools: sh, coreutils' timeout, ps, ip, dpkg-query.
BASE_PACKAGES = ("procps", "iproute2")
BUILD_TIMEOUT = 1800.0


def _host_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip('"') or "bookworm"
    except OSError:
        pass
    return "bookworm"


@dataclasses.dataclass(frozen=True)
class Recipe:
    release: str
    mirror: str
    components: tuple[str, ...]
    packages: tuple[str, ...]

    @classmethod
    def default(cls) -> "Recipe":
        packages = set(BASE_PACKAGES)
        for tool in TOOLS.values():
            packages.update(tool.packages)
        return cls(release=os.environ.get("BENCH_IMAGE_RELEASE", _host_release()),
                   mirror=os.environ.get("BENCH_IMAGE_MIRROR", "http://deb.debian.org/debian"),
                   components=("main", "non-free"),  # netperf is in non-free
                   packages=tuple(sorted(packages)))

    @property
    def digest(self) -> str:
        doc = json.dumps({"version": RECIPE_VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.sha256(doc.encode()).hexdigest()[:12]

    @property
    def tag(self) -> str:
        return f"{IMAGE_REPOSITORY}:{self.digest}"

    @property
    def rootfs(self) -> Path:
        return CACHE / f"rootfs-{self.digest}.tar"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_rootfs(recipe: Recipe, force: bool = False) -> Path:
    """debootstrap the package set into a tar file in the cache (once per recipe)."""
    if recipe.rootfs.exists() and not force:
        return recipe.rootfs
    if shutil.which("debootstrap") is None:
        raise BenchError("debootstrap is missing: apt-get install debootstrap (or run scripts/setup.sh)")
    CACHE.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f"build-{recipe.digest}-", dir=CACHE))
    log = CACHE / f"rootfs-{recipe.digest}.log"
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
        # Package caches are not part of what is measured; they only make the image larger.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for p in (root / junk).glob("*"):
                if p.is_file():
                    p.unlink()
        (root / "etc" / "bench-recipe.json").write_text(json.dumps(dataclasses.asdict(recipe), indent=2))
        partial = build / "rootfs.tar"
        subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."], check=True)
        os.replace(partial, recipe.rootfs)  # atomic: a killed build never leaves a half tar behind
    finally:
        shutil.rmtree(build, ignore_errors=True)
    _say(f"root file system {recipe.digest} built in {time.monotonic() - start:.0f} s")
    return recipe.rootfs


def docker_image(client, recipe: Recipe, force: bool = False):
    """The Docker image of the recipe, imported from the root file system if it is not there."""
    import docker.errors

    if not force:
        try:
            return client.images.get(recipe.tag)
        except docker.errors.ImageNotFound:
            pass
    tar = build_rootfs(recipe, force=force)
    _say(f"importing {tar.name} into Docker as {recipe.tag}")
    client.api.import_image_from_file(
        str(tar), repository=IMAGE_REPOSITORY, tag=recipe.digest,
        changes=[f"LABEL {LABEL_RECIPE}={recipe.digest}", 'CMD ["sleep", "infinity"]'])
    return client.images.get(recipe.tag)
