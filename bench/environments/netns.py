"""Network namespaces of the run's own. BridgeNetwork: a private L2 network for one VM, a Linux
bridge in a namespace and the guest's tap device on it (the study's virtio-net + vhost on a
bridge). ClientNamespace: a namespace whose clients reach a container's published port the way
a client on another host does, through Docker's iptables DNAT rather than docker-proxy.

Every packet stays inside the namespace: the bridge's address and the guest's exist only there,
and the namespace has no route anywhere else. A client on the host reaches the guest by running
inside the namespace (`ip netns exec`).

libvirt opens the tap by name in its own (root) namespace when it starts QEMU, so the tap is made
there first and moved into the namespace once QEMU holds it: a tap's file descriptor stays bound
to its device across the move. Both carry the run id in their alias, which is how `bench cleanup`
knows whose they are.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import subprocess
from pathlib import Path

from ..errors import BenchError

NETNS_DIR = Path("/run/netns")
PREFIX = "bench-"
BRIDGE = "br0"                       # exists only inside the namespace: no clash between runs
SUBNET = ipaddress.ip_network("10.213.0.0/24")  # private, and only inside the namespace
HOST_ADDRESS = "10.213.0.1"          # the namespace's end (on the bridge)
GUEST_ADDRESS = "10.213.0.2"         # given to the guest on its kernel command line
TAP_PREFIX = "btap"                  # root-namespace names are shared: at most 15 characters


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`ip ARGS`; a failure is a BenchError quoting the command (unless check=False)."""
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise BenchError(f"`ip {' '.join(args)}` failed: {(r.stderr or r.stdout).strip()}")
    return r


def host_networks() -> set[ipaddress.IPv4Network]:
    """The IPv4 networks the host's interfaces are on now (what a new address must not overlap)."""
    r = ip("-j", "-4", "addr", "show", check=False)
    used = set()
    try:
        for link in json.loads(r.stdout or "[]"):
            for a in link.get("addr_info", []):
                used.add(ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False))
    except ValueError:
        pass
    return used


def alias_of(run_id: str) -> str:
    return f"bench run {run_id}"


def namespaces() -> list[str]:
    """Names of every named network namespace (those `ip netns` manages)."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir())


def owner(namespace: str) -> str | None:
    """The run id in the alias of a link of the namespace (its bridge, or a client namespace's
    veth end); None: no such link, or not ours."""
    r = ip("-j", "-n", namespace, "link", "show", check=False)
    try:
        links = json.loads(r.stdout) if r.returncode == 0 else []
    except ValueError:
        return None
    for link in links:
        alias = link.get("ifalias", "")
        if alias.startswith(alias_of("")):
            return alias[len(alias_of("")):]
    return None


def stray_taps() -> list[tuple[str, str]]:
    """(tap, run id) of our taps still in the root namespace (a run killed before the move)."""
    r = ip("-j", "link", "show", check=False)
    try:
        links = json.loads(r.stdout) if r.returncode == 0 else []
    except ValueError:
        return []
    return [(l["ifname"], l.get("ifalias", "")[len(alias_of("")):]) for l in links
            if l.get("ifname", "").startswith(TAP_PREFIX) and l.get("ifalias", "").startswith(alias_of(""))]


def delete_namespace(namespace: str) -> None:
    # Deleting the namespace deletes the bridge and the tap in it (virtual devices die with it).
    if (NETNS_DIR / namespace).exists():
        ip("netns", "delete", namespace)


def delete_link(name: str) -> None:
    """Delete a root-namespace link if it is there. A veth's root end dies with its peer's
    namespace, but asynchronously: it may still show, then be gone when we delete it."""
    if ip("link", "show", name, check=False).returncode != 0:
        return
    r = ip("link", "delete", name, check=False)
    if r.returncode != 0 and ip("link", "show", name, check=False).returncode == 0:
        raise BenchError(f"`ip link delete {name}` failed: {(r.stderr or r.stdout).strip()}")


class RunNamespace:
    """A network namespace of one environment of one run, and the one link of it that lives in
    the root namespace (`root_link`: a tap before its move, a veth's root end), which is
    removed with it. Subclasses make what is inside."""

    def __init__(self, run_id: str, environment: str, root_link_prefix: str):
        self.run_id = run_id
        self.namespace = f"{PREFIX}{run_id}-{environment}"
        digest = hashlib.sha256(f"{run_id}/{environment}".encode()).hexdigest()
        self.root_link = f"{root_link_prefix}{digest[:10]}"  # at most 15 characters
        self.made = False

    def _add_namespace(self) -> tuple[str, str]:
        """The namespace itself, with its loopback up; returns `ip`'s arguments for inside it."""
        if (NETNS_DIR / self.namespace).exists():
            raise BenchError(f"network namespace {self.namespace} already exists: a run with this id is "
                             f"going on or was killed (`bench cleanup --run-id {self.run_id}`)")
        self.made = True  # from here on, delete() has something to remove
        ip("netns", "add", self.namespace)
        ns = ("-n", self.namespace)
        ip(*ns, "link", "set", "lo", "up")
        return ns

    def client_command(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *argv]

    def delete(self) -> None:
        """The namespace (virtual devices in it die with it), and the root link if it is left."""
        if not self.made:
            return
        delete_namespace(self.namespace)
        delete_link(self.root_link)
        self.made = False


class BridgeNetwork(RunNamespace):
    """The namespace, bridge and tap of one environment of one run."""

    def __init__(self, run_id: str, environment: str):
        super().__init__(run_id, environment, TAP_PREFIX)
        self.tap = self.root_link
        self.guest_address = GUEST_ADDRESS
        self.guest_cidr = f"{GUEST_ADDRESS}/{SUBNET.prefixlen}"

    def create(self) -> None:
        """The namespace with its bridge, and the tap in the root namespace for libvirt."""
        ns = self._add_namespace()
        ip(*ns, "link", "add", BRIDGE, "type", "bridge")
        ip(*ns, "link", "set", BRIDGE, "alias", alias_of(self.run_id))
        ip(*ns, "addr", "add", f"{HOST_ADDRESS}/{SUBNET.prefixlen}", "dev", BRIDGE)
        ip(*ns, "link", "set", BRIDGE, "up")
        ip("tuntap", "add", "dev", self.tap, "mode", "tap")
        ip("link", "set", self.tap, "alias", alias_of(self.run_id))

    def attach(self) -> None:
        """Move the tap (QEMU holds it open now) into the namespace and onto the bridge."""
        ip("link", "set", self.tap, "netns", self.namespace)
        ip("-n", self.namespace, "link", "set", self.tap, "master", BRIDGE, "up")



# Client namespaces take a /30 each from this pool, the first no interface is on: two runs
# (or a run and a test) with such a namespace at once each get their own pair of addresses.
CLIENT_POOL = ipaddress.ip_network("10.214.0.0/24")
CLIENT_LOCK = Path("/run/bench/client-namespaces.lock")  # one choice of a pair at a time


def free_client_pair() -> tuple[ipaddress.IPv4Network, str, str]:
    """A /30 of CLIENT_POOL no interface is on: (subnet, host side, namespace side)."""
    used = host_networks()
    for subnet in CLIENT_POOL.subnets(new_prefix=30):
        if not any(subnet.overlaps(u) for u in used):
            host, inside = (str(a) for a in subnet.hosts())
            return subnet, host, inside
    raise BenchError(f"every /30 of {CLIENT_POOL} is on an interface already: too many client namespaces at "
                     f"once (`bench cleanup` removes those of killed runs)")
VETH_PREFIX = "bcv"


class ClientNamespace(RunNamespace):
    """A namespace with one veth pair to the root namespace. A server's ports are published on
    the root end's address; a client inside connects to it, so its packets arrive on an
    interface as another host's would, meet Docker's DNAT rule in PREROUTING and are forwarded
    to the container by the kernel. A loopback client instead is carried by docker-proxy, a
    user-space copy loop: a different cost, and not the one the study's remote client paid.
    Both addresses exist only on the pair; the namespace has no route anywhere else."""

    def __init__(self, run_id: str, environment: str):
        super().__init__(run_id, environment, VETH_PREFIX)
        self.host_end = self.root_link
        self.address = ""   # the host side of its pair, chosen by create()

    def create(self) -> None:
        import fcntl

        CLIENT_LOCK.parent.mkdir(parents=True, exist_ok=True)
        with open(CLIENT_LOCK, "a") as lock:
            # Chosen and taken under the lock: another run's choice waits until this pair is on
            # its interface, where free_client_pair sees it.
            fcntl.flock(lock, fcntl.LOCK_EX)
            subnet, self.address, inside = free_client_pair()
            ns = self._add_namespace()
            # Made inside the namespace at once: a kill from here on leaves nothing in the root
            # one that the namespace's deletion does not take with it.
            ip("link", "add", self.host_end, "type", "veth", "peer", "name", "client0", "netns", self.namespace)
            ip("link", "set", self.host_end, "alias", alias_of(self.run_id))
            ip(*ns, "link", "set", "client0", "alias", alias_of(self.run_id))
            ip("addr", "add", f"{self.address}/{subnet.prefixlen}", "dev", self.host_end)
            ip(*ns, "addr", "add", f"{inside}/{subnet.prefixlen}", "dev", "client0")
        ip("link", "set", self.host_end, "up")
        ip(*ns, "link", "set", "client0", "up")
