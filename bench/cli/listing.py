"""`bench list`: suites, workloads and environments, and whether each environment runs here."""

from __future__ import annotations

import argparse
import json

from .. import config, text
from ..errors import BenchError
from . import tables

NAME = "list"
HELP = "show suites, workloads and environments, and what runs here"
DESCRIPTION = ("Show suites, the workload catalogue and environments with whether each is available here: "
               "one line each, within 100 columns. --long adds descriptions, workload parameters for a "
               "profile and why an environment is or is not available; --json prints all of it.")
SECTIONS = ("suites", "workloads", "environments")


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("section", nargs="?", choices=SECTIONS, metavar="SECTION",
                        help=f"only this section: {', '.join(SECTIONS)}")
    parser.add_argument("--available", action="store_true",
                        help="only the environments that can run here")
    detail = parser.add_mutually_exclusive_group()
    detail.add_argument("--long", action="store_true",
                        help="descriptions, parameters and availability reasons under each name")
    detail.add_argument("--json", action="store_true",
                        help="one JSON document with every detail, availability and its reason")
    parser.add_argument("--profile", choices=config.PROFILES, default="quick",
                        help="workload parameters for this profile (default: quick)")
    parser.add_argument("--allow-tcg", action="store_true",
                        help="count kvm environments as available under TCG emulation where KVM cannot run")


def run(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    if args.available and args.section not in (None, "environments"):
        raise BenchError(f"--available chooses environments; there is nothing to choose among {args.section}: "
                         f"bench list environments --available")
    sections = [args.section] if args.section else list(SECTIONS)
    listed = listing(catalogue, sections, args.profile, args.allow_tcg)
    if args.json:
        if args.available:
            listed["environments"] = [e for e in listed["environments"] if e["available"]]
        print(json.dumps({"profile": args.profile, **listed}, indent=2, default=str))
        return 0
    columns = text.width()
    render = {"suites": lambda items: tables.suite_lines(items, args.long, columns),
              "workloads": lambda items: tables.workload_lines(items, args.long, args.profile, columns),
              "environments": lambda items: tables.environment_lines(items, args.long, args.available, columns)}
    print("\n\n".join("\n".join(render[section](listed[section])) for section in sections))
    return 0


def listing(catalogue: config.Catalogue, sections: list[str], profile: str,
            allow_tcg: bool) -> dict[str, list[dict]]:
    """What `bench list` shows, as plain data: the JSON document, and what the text is made from.
    Availability is probed only when environments are asked for (it talks to the daemons)."""
    from ..environments import KINDS
    from ..workloads import TOOLS

    listed: dict[str, list[dict]] = {}
    if "suites" in sections:
        listed["suites"] = [{"name": name, **s.model_dump()} for name, s in sorted(catalogue.suites.items())]
    if "workloads" in sections:
        listed["workloads"] = [catalogue.workload(name, profile).to_json()
                               for name in sorted(catalogue.workloads)]
    if "environments" in sections:
        envs = []
        for name, e in sorted(catalogue.environments.items()):
            variant = catalogue.variant(name, profile)
            ok, why = KINDS[e.kind].availability(variant, allow_tcg=allow_tcg)
            refusals = {tool: KINDS[e.kind].refusal(variant, workload) for tool, workload in sorted(TOOLS.items())}
            envs.append({"name": name, "kind": e.kind, "available": ok, "reason": why,
                         "refuses": {tool: str(r) for tool, r in refusals.items() if r is not None},
                         "description": e.description, "baseline": e.baseline or None,
                         "dimension": e.dimension or None, "by_default": e.by_default,
                         "variant": variant.model_dump(mode="json", exclude_unset=True)})
        listed["environments"] = envs
    return listed
