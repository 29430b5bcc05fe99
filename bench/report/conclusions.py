"""The IBM 2014 study's five conclusions, each tested on this run's own cells.

Each is "holds here", "does not hold here", "not resolved here" (the deciding cells straddle
the band) or "not tested here" with the reason (what this run did not measure), and links to
the cells that decide it. Every judgement reads the cells' one verdict (bench.stats.verdict),
as the matrix does.
"""

from __future__ import annotations

import math
from typing import Any

from .numbers import change, overhead_words, perf_interval
from .verdict import cell_id, classify

CONTAINER_KINDS = ("docker", "podman", "swarm", "compose")
IO = ("disk", "network latency", "network throughput")
# Request/response traffic: one small packet after another, the study's "high packet rate".
PACKET_RATE = ("network latency", "applications")
MAX_LINKS = 6   # cells linked per conclusion: one per environment and workload, the worst first


def _link(env: str, c: dict[str, Any]) -> dict[str, str]:
    r = c["by_env"][env]
    study = r.get("study_overhead")
    beside = (f" (IBM 2014's {r.get('study_config') or 'matching configuration'}: {overhead_words(study, r['better'])})"
              if isinstance(study, (int, float)) and math.isfinite(study) else "")
    return {"text": f"{env}: {c['label']} {change(r, interval=False)}{beside}",
            "href": "#" + cell_id(env, c["workload"], c["metric"], c["point"])}


def _mine(cells, envs, resources):
    return [(e, c) for c in cells if c["resource"] in resources for e in envs if e in c["by_env"]]


def _worst_first(pairs):
    def slow(ec):
        p = perf_interval(ec[1]["by_env"][ec[0]])[0]
        return -math.log(p) if isinstance(p, float) and math.isfinite(p) and p > 0 else 0.0
    return sorted(pairs, key=slow, reverse=True)


def _judge(pairs, bad: str) -> tuple[str, list]:
    """`bad`: the verdict that makes a "no cost" claim fail. Returns (status, deciding pairs)."""
    verdicts = [(e, c, classify(c["by_env"][e])) for e, c in pairs]
    failing = [(e, c) for e, c, v in verdicts if v == bad]
    if failing:
        return "fails", _worst_first(failing)
    open_ = [(e, c) for e, c, v in verdicts if v == "unresolved"]
    if open_:
        return "open", open_
    return "passes", [(e, c) for e, c, _ in verdicts]


def _entry(n, claim, status, why, pairs=()):
    seen, links = set(), []
    for e, c in pairs:
        if (e, c["workload"]) not in seen:
            seen.add((e, c["workload"]))
            links.append(_link(e, c))
    return {"n": n, "claim": claim, "status": status, "why": why, "links": links[:MAX_LINKS]}


def _no_vm(emulated: set[str]) -> str:
    return ("no virtual machine was measured under KVM" +
            (f" ({', '.join(sorted(emulated))} ran emulated under TCG, which says nothing of KVM)" if emulated else ""))


def conclusions(cells: list[dict[str, Any]], envs: list[str], kinds: dict[str, str], emulated: set[str],
                networks: dict[str, str], proxied: set[str], baseline: str) -> list[dict[str, Any]]:
    """The study's five conclusions, each judged on this run's cells. networks: each environment's
    network mode as it ran (nat, host, bridge...); proxied: the NAT environments whose client went
    through docker-proxy on loopback."""
    others = [e for e in envs if e != baseline]
    containers = [e for e in others if kinds.get(e) in CONTAINER_KINDS]
    vms = [e for e in others if kinds.get(e) == "libvirt" and e not in emulated]
    return [_docker_vs_kvm(cells, containers, vms, emulated),
            _io_overhead(cells, containers, vms, emulated),
            _kvm_latency(cells, vms, emulated),
            _nat_packet_rate(cells, containers, networks, proxied),
            _bare_metal(cells, containers)]


def _docker_vs_kvm(cells, containers, vms, emulated) -> dict[str, Any]:
    """1. Docker equals or exceeds KVM in every case."""
    claim = "Docker equals or exceeds KVM in every case tested."
    if not containers or not vms:
        return _entry(1, claim, "not tested", _no_vm(emulated) if not vms else "no container environment ran")
    worse, compared = [], []
    for c in cells:
        for d in containers:
            for v in vms:
                if d in c["by_env"] and v in c["by_env"]:
                    compared.append((d, c))
                    dp, vp = perf_interval(c["by_env"][d]), perf_interval(c["by_env"][v])
                    if math.isfinite(dp[2]) and math.isfinite(vp[1]) and dp[2] < vp[1]:
                        worse.append((d, c))
    status = "does not hold" if worse else "holds"
    why = (f"a container's whole interval lies below KVM's on {len(worse)} of {len(compared)} comparisons"
           if worse else f"no container is resolved below KVM on any of {len(compared)} comparisons")
    return _entry(1, claim, status, why, worse or compared)


def _io_overhead(cells, containers, vms, emulated) -> dict[str, Any]:
    """2. Both have overhead on I/O-intensive work."""
    claim = "Both containers and KVM add overhead to I/O-intensive work."
    c_status, c_pairs = _judge(_mine(cells, containers, IO), "cost")
    container_half = {"fails": "containers cost on I/O", "open": "containers' I/O cost is not resolved",
                      "passes": "containers match native on I/O"}[c_status] if c_pairs else "no container I/O cell"
    if not vms:
        return _entry(2, claim, "not tested", f"{_no_vm(emulated)}; the containers' half: {container_half}",
                      c_pairs if c_status == "fails" else ())
    v_status, v_pairs = _judge(_mine(cells, vms, IO), "cost")
    if c_status == "fails" and v_status == "fails":
        return _entry(2, claim, "holds", "both cost on I/O", c_pairs[:2] + v_pairs[:2])
    if "passes" in (c_status, v_status):
        return _entry(2, claim, "does not hold", "containers match native on every I/O cell"
                      if c_status == "passes" else "KVM matches native on every I/O cell",
                      c_pairs if c_status == "passes" else v_pairs)
    return _entry(2, claim, "not resolved", "I/O cells straddle the ±5 % band", c_pairs + v_pairs)


def _kvm_latency(cells, vms, emulated) -> dict[str, Any]:
    """3. KVM suits latency-sensitive or high-I/O-rate work less well."""
    claim = "KVM suits latency-sensitive or high-I/O-rate workloads less well."
    if not vms:
        return _entry(3, claim, "not tested", _no_vm(emulated))
    status, pairs = _judge(_mine(cells, vms, ("network latency", "disk")), "cost")
    return _entry(3, claim, {"fails": "holds", "passes": "does not hold", "open": "not resolved"}[status],
                  {"fails": "KVM costs on network latency or disk", "passes": "KVM matches native there",
                   "open": "KVM's latency and disk cells straddle the ±5 % band"}[status], pairs)


def _nat_packet_rate(cells, containers, networks, proxied) -> dict[str, Any]:
    """4. Docker's NAT adds large overhead at high packet rates."""
    claim = "Docker's NAT adds large overhead for workloads with high packet rates."
    nat = [e for e in containers if networks.get(e) == "nat"]
    kernel_nat = [e for e in nat if e not in proxied]
    if not nat:
        return _entry(4, claim, "not tested", "no container ran behind NAT")
    deciding = kernel_nat or nat
    status, pairs = _judge(_mine(cells, deciding, PACKET_RATE), "cost")
    # the network's own test first (netperf's round trips), then the applications
    pairs = sorted(pairs, key=lambda ec: PACKET_RATE.index(ec[1]["resource"]))
    if not pairs:
        return _entry(4, claim, "not tested", "no request/response workload ran")
    path = ("through the kernel's DNAT, the study's path" if kernel_nat else
            "only through docker-proxy on loopback (a user-space copy the study's NAT, kernel DNAT from another "
            "host, never had; docker-nat-dnat measures the study's path)")
    word = {"fails": "holds", "passes": "does not hold", "open": "not resolved"}[status]
    why = {"fails": f"{_join(deciding)} cost at high packet rates, measured {path}",
           "passes": f"{_join(deciding)} match native at high packet rates, measured {path}",
           "open": f"{_join(deciding)}'s packet-rate cells straddle the ±5 % band, measured {path}"}[status]
    return _entry(4, claim, word, why, pairs)


def _bare_metal(cells, containers) -> dict[str, Any]:
    """5. Containers give bare-metal performance (CPU, memory, disk on a volume)."""
    claim = "Containers give bare-metal performance: no CPU, memory or disk overhead."
    if not containers:
        return _entry(5, claim, "not tested", "no container environment ran")
    status, pairs = _judge(_mine(cells, containers, ("CPU", "memory", "disk")), "cost")
    if not pairs:
        return _entry(5, claim, "not tested", "no CPU, memory or disk workload ran")
    return _entry(5, claim, {"fails": "does not hold", "passes": "holds", "open": "not resolved"}[status],
                  {"fails": "a container costs on CPU, memory or disk",
                   "passes": "every container cell of CPU, memory and disk is within ±5 % of native or better",
                   "open": "no cost resolved, but some cells straddle the ±5 % band"}[status], pairs)


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
