"""`bench cleanup`: remove what killed runs left behind, never what a live run holds."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import config
from ..errors import BenchError

NAME = "cleanup"
HELP = "remove what killed runs left behind"
DESCRIPTION = ("Find what runs left, each environment kind its own (Docker's labelled containers, volumes and "
               "networks and a run's second dockerd with its bridge; a swarm; libvirt domains and their disks; "
               "Podman's labelled containers, volumes and service), the run's network namespaces, host scratch "
               "folders named after a run and the tools still running in them, and remove them. A run in "
               "progress (its writer holds <run>/.lock) is left alone: named, never touched; --run-id of one "
               "is refused.")


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-id", default=None, help="only this run's leftovers")
    parser.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    parser.add_argument("--scratch", type=Path, default=Path("/var/tmp"),
                        help="the --scratch folder runs used (default: /var/tmp)")


def run(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    from .. import cleanup, live
    from ..store import check_run_id

    if args.run_id:
        check_run_id(args.run_id)
        alive = live.holder(args.run_id)
        if alive is not None:
            raise BenchError(f"{alive}: cleanup leaves a live run alone (its own teardown removes what "
                             f"it made); stop it first if it must go")
    leftovers, spared = cleanup.spare_live(cleanup.find(args.run_id, args.scratch))
    for alive in spared.values():
        print(f"leaving run {alive.run_id} alone: it is in progress (pid {alive.pid}, {alive.folder})")
    if not leftovers:
        print("nothing to clean up")
        return 0
    for leftover in leftovers:
        print(f"{'would remove' if args.dry_run else 'removing'} {leftover.kind} {leftover.name} "
              f"(run {leftover.run_id})")
        if not args.dry_run:
            leftover.remove()
    if not args.dry_run:
        live.prune()   # the registry's links of killed runs
    return 0
