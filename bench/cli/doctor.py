"""`bench doctor`: what this host can run, and what would spoil measurements."""

from __future__ import annotations

import argparse
import textwrap

from .. import config, text

NAME = "doctor"
HELP = "check what this host can run, and what would spoil measurements"
DESCRIPTION = ("One line per check (OK, WARN, FAIL, and the fix): dockerd, libvirtd, whether KVM really runs "
               "a guest, the workload image, each workload's programs on the host, and noise sources (CPU "
               "governor, turbo, swap, other load, transparent hugepages, running inside a VM). Exit status 1 "
               "when the host environment lacks something it needs; warnings alone do not fail.")


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    tuning = parser.add_mutually_exclusive_group()
    tuning.add_argument("--tune", action="store_true",
                        help="set every CPU's governor to performance (old values kept for --reset)")
    tuning.add_argument("--reset", action="store_true", help="restore the governors --tune changed")


def run(args: argparse.Namespace, catalogue: config.Catalogue) -> int:
    from .. import doctor

    if args.tune or args.reset:
        print(doctor.tune() if args.tune else doctor.reset())
        return 0
    checks = doctor.run_checks()
    status = doctor.exit_status(checks)
    if args.json:
        print(doctor.as_json(checks))
        return status
    group = None
    for check in checks:
        if check.group != group:  # a heading per group, a blank line between groups
            print(f"\n{check.group}:" if group else f"{check.group}:")
            group = check.group
        # A long reason (why KVM cannot run) wraps under its own column, whole.
        print(textwrap.fill(f"  {check.line()}", text.width(), subsequent_indent=" " * 31,
                            break_long_words=False, break_on_hyphens=False))
    failed = [c.name for c in checks if c.status == doctor.FAIL]
    warned = sum(c.status == doctor.WARN for c in checks)
    if failed:
        print(f"\nthe host environment cannot run: {', '.join(failed)} missing")
    else:
        print(f"\nthe host environment can run every workload; {warned} warning(s)")
    return status
