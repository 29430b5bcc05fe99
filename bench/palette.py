"""One colour per environment, the same in the report and in the notebook.

A colour is the environment's by its name, not by its place in a run's order, so that docker-nat
is the same blue in every figure of every report. The catalogue's environments have colours
chosen by family (native grey, Docker blues and greens, gVisor gold, Podman indigo, VMs oranges
and reds, emulation brown);
any other name takes a colour of its own from a fixed palette by a stable hash of the name.
"""

from __future__ import annotations

import hashlib

NATIVE = "#4d4d4d"
COLOURS = {
    "host": NATIVE,
    "docker-nat": "#1f77b4", "docker-host": "#17becf", "docker-overlay": "#9467bd",
    "docker-nat-dnat": "#6baed6", "docker-c2c": "#2ca02c", "docker-swarm": "#98df8a",
    "docker-swarm-host": "#3a7d44", "docker-compose": "#7f7fff",
    "kvm": "#ff7f0e", "kvm-tuned": "#d62728", "kvm-qcow2": "#e6a03c", "kvm-bridge": "#e377c2",
    "kvm-generic": "#f2b880", "kvm-e1000": "#c45a8a", "kvm-sata": "#b5651d", "kvm-ide": "#8c6d31",
    "tcg": "#8c564b",
    # between containers and VMs: gVisor's own kernel in gold; another engine in indigo
    "docker-gvisor": "#e7ba52", "podman": "#393b79",
}
# For names the catalogue does not have (a user's own variants): matplotlib's tab20, less the
# greys that would read as native.
OTHERS = ("#aec7e8", "#ffbb78", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
          "#bcbd22", "#393b79", "#637939", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354")


def colour(environment: str) -> str:
    """The environment's colour as #rrggbb."""
    if environment in COLOURS:
        return COLOURS[environment]
    digest = hashlib.sha256(environment.encode()).digest()
    return OTHERS[digest[0] % len(OTHERS)]


def colours(environments) -> dict[str, str]:
    return {e: colour(e) for e in environments}
