"""`bench image build|list`: the workload image each environment kind makes from the one recipe."""

from __future__ import annotations

import argparse

from .. import config
from ..errors import BenchError

NAME = "image"
HELP = "build or show the workload image (Docker image, VM disk and kernel)"
DESCRIPTION = ("The workload image is made from Debian packages with debootstrap and cached under the hash of "
               "its recipe; `build` does nothing when it is already there.")


def arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="image_verb", metavar="ACTION")
    actions.required = True
    build = actions.add_parser("build", help="build the image if it is missing")
    build.add_argument("--force", action="store_true", help="rebuild even if it exists")
    actions.add_parser("list", help="show the recipe, the cached root file system and Docker images")


def run(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    """Each environment kind makes (build) or shows what it needs of the one recipe's image."""
    from .. import image
    from ..environments import KINDS

    recipe = image.recipe()
    if args.image_verb == "build":
        refused = []
        for kind in KINDS.values():
            try:
                line = kind.prepare_image(recipe, force=args.force)
            except BenchError as e:  # one kind that cannot (no dockerd) does not stop the others
                refused.append(str(e))
                continue
            if line:
                print(line)
        if refused:
            raise BenchError("; ".join(refused))
        return 0
    print(f"recipe {recipe.digest}: Debian {recipe.release} ({','.join(recipe.components)}) from {recipe.mirror}")
    print(f"  packages: {' '.join(recipe.packages)}")
    size = f"{recipe.rootfs.stat().st_size / 2**20:.0f} MiB" if recipe.rootfs.exists() else "not built"
    print(f"root file system {recipe.rootfs}: {size}")
    for kind in KINDS.values():
        for line in kind.image_status(recipe):
            print(line)
    return 0
