"""libvirt/QEMU virtual machines (libvirt-python against qemu:///system).

The guest boots the workload image's own Debian kernel and initramfs directly from a disk made
of the same root file system as the Docker image (identical binaries). Its PID 1 is a small
script of the image's (bench-init) that mounts, configures the network and starts the QEMU
guest agent; nothing else runs in the guest to disturb a measurement. The harness controls
the guest only through the agent over virtio-serial (guest-exec, guest-file-*): no SSH keys
or passwords exist to manage.

Networks: `user` is QEMU's user-mode net with guest ports forwarded 1:1 to 127.0.0.1 (or to the
host's address facing a --client-host); `bridge`
is the study's virtio-net on a Linux bridge, with vhost-net under KVM, kept inside a network
namespace the run makes (netns.py): the guest gets its address on the kernel command line, and
clients on the host run inside that namespace.

Devices: paravirtual (virtio-net, virtio-blk: the default) or emulated (an e1000 or rtl8139 NIC,
root and data disks on SATA or IDE), see guest_devices.py. Debian's cloud kernel has drivers
for none of the emulated ones but PIIX IDE; the variant then boots the image's generic kernel
flavour (same Debian kernel version), and `bench list` says a variant its kernel cannot drive
is not available. Once booted, the guest's own sysfs says which drivers drive its NIC and
disks; a guest whose drivers are not the variant's is refused, and the drivers are recorded.

Acceleration is probed, not assumed: /dev/kvm may exist where KVM cannot run a guest (nested
virtualization). A `kvm` variant on such a host is refused unless emulation is allowed
(--allow-tcg); it then runs under QEMU's TCG, and the run records accel=tcg everywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .. import interrupts, owner, settings
from ..errors import BenchError
from ..model import Measurement
from .base import (SERVER_SCRIPT, Availability, Environment, ExecResult, Instance, Leftover, PidFileServer, Refusal,
                   Server)
from . import kvm_host
from .context import numa_nodes
from . import guest_agent
from .domain import (LibvirtVariant, cpu_mode, domain_spec, domain_xml, driver_support, machine_type,
                     uses_vhost)
from .guest_devices import PROBE_SCRIPT, GuestDevices, mismatches, parse_probe
from .kvm_host import probe_variant
from .netns import BridgeNetwork
from .topology import read_topology

WORKDIR = "/bench/work"
BOOT_TIMEOUT = 300.0          # seconds from domain start to a guest agent that answers
BRIDGE_FIRST_PORT = 20000     # servers' ports in a guest on a bridge (nothing else listens there)


def vm_dir() -> Path:
    """Where a run's guest disks are made (BENCH_VM_DIR)."""
    return settings.current().vm_dir


def _connect():
    import libvirt

    # libvirt prints every error to stderr by default; ours are raised and handled instead.
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    return libvirt.open(settings.current().libvirt_uri)


RECONNECT_SECONDS = 60  # how long teardown waits for a restarted libvirtd to answer


def _remove_domain(dom) -> None:
    """Destroy (transient) or undefine a domain; one that vanished since it was listed (its QEMU
    ended, another cleanup got there first) is already what we want."""
    import libvirt

    try:
        dom.destroy() if dom.isActive() else dom.undefine()
    except libvirt.libvirtError as e:
        if e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise


def _retry(call, seconds: float):
    """call() until it returns, for up to `seconds`; the last error is raised."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except Exception:
            if time.monotonic() >= deadline:
                raise
            time.sleep(1)


def _destroy_by_name(conn, name: str) -> None:
    """Destroy the transient domain `name` (on conn, or a new connection); one that is gone
    already is what we want."""
    import libvirt

    own = conn is None
    conn = _connect() if own else conn
    try:
        try:
            conn.lookupByName(name).destroy()
        except libvirt.libvirtError as e:
            if e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise
    finally:
        if own:
            conn.close()


def _dotted(version: int) -> str:
    """libvirt's version numbers: 9000000 -> "9.0.0"."""
    return f"{version // 1000000}.{version // 1000 % 1000}.{version % 1000}"


class LibvirtEnvironment(Environment):
    kind = "libvirt"
    study_configuration = "kvm"
    shares_host_memory = False   # a guest's memory is QEMU's (numatune interleaves it)
    cleanup_order = 10           # domains before their disks and the namespaces of their taps
    Variant = LibvirtVariant

    def __init__(self, name: str, variant: BaseModel | dict[str, Any], run_id: str, **given: Any):
        super().__init__(name, variant, run_id, **given)
        self.accel = self.variant.accel
        self.accel_reason = "asked for by name" if self.accel == "tcg" else "KVM probe passed"
        self.conn = None
        self.domain = None
        self.folder: Path | None = None
        self.console_log = ""
        self.boot_seconds = float("nan")
        self.xml = ""
        self.pinning: tuple[int, ...] | None = None
        self.kept_artifacts: dict[str, str] = {}
        self.devices: GuestDevices | None = None  # what the guest's sysfs says, once booted
        self.device_probe = ""                    # its raw words, kept with the console log
        self.bridge = BridgeNetwork(run_id, name) if self.variant.network == "bridge" else None
        self.instances: list[LibvirtInstance] = []  # the density suite's, while they live

    # -- before anything is made -------------------------------------------------------------

    @classmethod
    def backend_errors(cls) -> tuple[type[BaseException], ...]:
        # libvirt's (libvirtd gone, the guest agent silent, a domain vanished), and the host's
        # commands that make a guest's disks and namespace
        import libvirt

        return (libvirt.libvirtError, OSError, subprocess.SubprocessError)

    @classmethod
    def availability(cls, variant: BaseModel, allow_tcg: bool = False) -> Availability:
        try:
            import libvirt  # noqa: F401
        except ImportError:
            return Availability(False, "libvirt-python is missing: pip install 'bench[libvirt]'")
        try:
            conn = _connect()
            version = conn.getLibVersion()
            conn.close()
        except Exception as e:
            return Availability(False, f"libvirtd is not reachable at {settings.current().libvirt_uri} "
                                       f"({str(e).strip().splitlines()[0]}): install libvirt-daemon-system and "
                                       f"start it (`libvirtd -d; virtlogd -d`)")
        where = f"libvirt {_dotted(version)}"
        if variant.network == "bridge" and (shutil.which("ip") is None or not os.path.exists("/dev/net/tun")):
            return Availability(False, f"{where}; a bridged guest needs iproute2's `ip` and /dev/net/tun "
                                       f"(modprobe tun)")
        try:
            drivable, why = driver_support(variant)
        except BenchError as e:
            drivable, why = False, str(e)
        if not drivable:
            return Availability(False, f"{where}; {why}")
        if variant.accel == "tcg":
            # Emulation is never chosen by default, not even by name alone: its numbers are
            # not virtualization costs, and a run over "every environment" must not include it.
            if allow_tcg:
                return Availability(True, f"{where}; QEMU TCG (binary translation, emulated)")
            return Availability(False, f"{where}; QEMU TCG emulation: runs only with --allow-tcg")
        from .. import image

        recipe = image.recipe()
        if not recipe.rootfs.exists():
            return Availability(False, f"{where}; KVM not probed yet: the probe boots the image's kernel, "
                                       f"run `bench image build`")
        usable, why = probe_variant(variant)
        if usable:
            return Availability(True, f"{where}; KVM usable ({why})")
        if allow_tcg:
            return Availability(True, f"{where}; KVM NOT usable ({why}): runs under TCG emulation (--allow-tcg)")
        return Availability(False, f"{where}; KVM NOT usable ({why}); pass --allow-tcg to run it emulated under TCG")

    @classmethod
    def remote_client_refusal(cls, variant: BaseModel) -> Refusal | None:
        if variant.network == "bridge":
            return Refusal("its bridge lives in a network namespace of the run's own, which no other host "
                           "reaches; run kvm-bridge with clients on this host (no --client-host)")
        return None

    @classmethod
    def leftovers(cls, run_id: str | None) -> list[Leftover]:
        """Domains whose bench metadata names a run, and the folders of their disks."""
        import xml.etree.ElementTree as ET

        from .domain import METADATA_NS

        ok, _ = cls.availability(LibvirtVariant(accel="tcg"), allow_tcg=True)  # reachable? (no KVM probe)
        if not ok:
            return []
        import libvirt

        conn = _connect()
        found = []
        for dom in conn.listAllDomains():
            try:
                meta = ET.fromstring(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS))
            except libvirt.libvirtError:
                continue  # not one of ours
            who = meta.get("id", "?")
            if run_id is None or who == run_id:
                found.append(Leftover("domain", dom.name(), who, lambda d=dom: _remove_domain(d)))
        prefix = f"bench-{run_id}-" if run_id else "bench-"
        if vm_dir().is_dir():
            for folder, who in owner.owned(sorted(vm_dir().glob(f"{prefix}*")), run_id):
                found.append(Leftover("VM disk folder", str(folder), who,
                                      lambda f=folder: shutil.rmtree(f, ignore_errors=True)))
        return found

    @classmethod
    def doctor_checks(cls) -> list:
        from .. import image
        from ..checks import OK, WARN, Check

        checks = []
        # Asked as a TCG guest so that this says only whether libvirtd answers; KVM is its own check.
        ok, why = cls.availability(LibvirtVariant(accel="tcg"), allow_tcg=True)
        checks.append(Check("environments", "libvirt", OK, why.split(";")[0] + " reachable") if ok else
                      Check("environments", "libvirt", WARN, f"libvirt environments unavailable: {why}",
                            "apt-get install libvirt-daemon-system qemu-system-x86; start libvirtd and virtlogd"))
        checks.append(kvm_host.kvm_check())
        # What a libvirt environment runs on the host besides libvirtd: QEMU, qemu-img (qcow2
        # disks), mke2fs (the VM disk from the image), ip (bridged guests).
        wanted = ("qemu-system-x86_64", "qemu-img", "mke2fs", "ip")
        missing = [p for p in wanted if shutil.which(p) is None]
        checks.append(Check("environments", "vm programs", WARN, f"missing: {', '.join(missing)}",
                            "apt-get install qemu-system-x86 qemu-utils e2fsprogs iproute2") if missing else
                      Check("environments", "vm programs", OK, " ".join(wanted)))
        disk = image.cache() / f"vm-{image.recipe().digest}" / "root.raw"
        checks.append(Check("image", "image VM disk", OK, str(disk)) if disk.exists() else
                      Check("image", "image VM disk", WARN, f"{disk} missing (made on first VM run)",
                            "bench image build"))
        return checks

    @classmethod
    def prepare_image(cls, recipe: Any, force: bool = False) -> str:
        from .. import image

        # The VM's kernel, initramfs and disk come from the same root file system.
        kernel, _ = image.vm_kernel(recipe)
        return f"VM disk {image.vm_disk(recipe)}, kernel {kernel}"

    @classmethod
    def image_status(cls, recipe: Any) -> list[str]:
        from .. import image

        vm = image.cache() / f"vm-{recipe.digest}"
        return [f"VM disk {disk}: {disk.stat().st_blocks * 512 / 2**20:.0f} MiB used"
                for disk in (sorted(vm.glob("root.*")) if vm.is_dir() else [])]

    @classmethod
    def intended_difference(cls, key: str, variant: BaseModel, cpu_differs: bool) -> str:
        # a guest: its own kernel, CPU model, vCPUs and cgroup tree (the variant as it ran: its
        # accel is the one the guest booted with)
        cpu = "host-passthrough" if variant.tuned else "libvirt's default CPU model"
        if variant.accel == "tcg":
            cpu = "QEMU's emulated CPU (TCG, cpu mode maximum)"
        if key in ("kernel_release", "kernel_cmdline", "clocksource", "thp", "cgroup_cpu_quota",
                   "cgroup_memory_limit", "cwd_fs"):
            return f"the guest's own kernel ({variant.kernel} flavour) and disk"
        if key in ("cpu_model", "cpu_flags"):
            return f"the VM's CPU model: {cpu}"
        if key == "blas_core" and cpu_differs:
            return f"OpenBLAS picks by the CPU flags the VM's CPU model ({cpu}) shows"
        if key in ("affinity", "online_cpus") and variant.vcpus:
            return f"the guest's {variant.vcpus} vCPUs"
        if key.startswith("limit.nproc"):
            return "the guest's own memory size (the kernel sizes nproc by it)"
        return ""

    # -- life cycle --------------------------------------------------------------------------

    def _provision(self, scratch_root: str, n_ports: int) -> None:
        try:
            self._make(n_ports)
        except BaseException:
            self.kept_artifacts = self.artifacts()  # the console log says why; teardown removes it
            self.teardown()  # a half-made guest leaves no domain, disk folder or namespace behind
            raise

    def _make(self, n_ports: int, boot: bool = True) -> None:
        """Make the guest's disks and domain, then (boot) start it; without boot, only the
        disks and the domain's XML: the density suite times the start alone."""
        from .. import image
        from .host import free_ports

        recipe = image.recipe()
        base_disk = image.vm_disk(recipe, self.variant.disk_format)
        kernel, initrd = image.vm_kernel(recipe, self.variant.kernel)
        if self.variant.guest_kernel:
            kernel, initrd = Path(self.variant.guest_kernel), Path(self.variant.guest_initrd or initrd)
        drivable, why = driver_support(self.variant)
        if not drivable:
            raise BenchError(f"{self.name}: {why}")
        if self.accel == "kvm":
            usable, why = probe_variant(self.variant)
            if not usable:
                if not self.allow_tcg:
                    raise BenchError(f"{self.name}: KVM is not usable here ({why}); pass --allow-tcg")
                self.accel, self.accel_reason = "tcg", f"KVM not usable: {why}"
        if self.accel == "tcg":
            self.instance_cap = self.TCG_INSTANCE_CAP
        if uses_vhost(self.variant, self.accel) and not os.path.exists("/dev/vhost-net"):
            raise BenchError(f"{self.name}: /dev/vhost-net is missing: `modprobe vhost_net` (the study's NIC back end)")

        resource = f"bench-{self.run_id}-{self.name}"
        folder = vm_dir() / resource
        folder.mkdir(parents=True, exist_ok=False)
        owner.mark(folder, self.run_id)
        self.folder = folder  # only once it is ours: teardown removes it
        root = self.folder / f"root.{self.variant.disk_format}"
        subprocess.run(["cp", "--sparse=always", str(base_disk), str(root)], check=True)
        data = self.folder / "data.raw"
        with open(data, "wb") as f:
            f.truncate(self.variant.data_disk_gib << 30)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "benchdata", str(data)], check=True)
        if self.variant.disk_format == "qcow2":
            # The data disk (fio's, MariaDB's) in the variant's format too: in the study the
            # MySQL guest's data lived on qcow2, and kvm-qcow2 measures what its name says.
            qcow2 = self.folder / "data.qcow2"
            subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(data), str(qcow2)], check=True)
            data.unlink()
            data = qcow2
        self.console_log = str(self.folder / "console.log")
        if self.bridge:
            # The guest's own stack, reached only through the namespace: any port is free there.
            self.ports = list(range(BRIDGE_FIRST_PORT, BRIDGE_FIRST_PORT + n_ports))
            self.bridge.create()
        else:
            self.ports = free_ports(n_ports, self.publish_address)

        spec = domain_spec(resource, self.run_id, self.name, self.variant, self.accel, read_topology(),
                           str(kernel), str(initrd), str(root), str(data), self.console_log, tuple(self.ports),
                           tap=self.bridge.tap if self.bridge else "",
                           guest_cidr=self.bridge.guest_cidr if self.bridge else "",
                           forward_address=self.publish_address, numa_nodes=numa_nodes())
        self.pinning = spec.pinning
        self.xml = domain_xml(spec)
        self.conn = _connect()
        if not boot:
            return
        self._boot()
        self._check_guest_devices()  # not part of the boot: kept out of boot_to_ready
        self.measurements.append(Measurement("boot_to_ready", self.boot_seconds, "s", "lower"))

    def _boot(self) -> None:
        """Start the domain made by _make's first part and wait for its agent."""
        with interrupts.deferred():  # libvirt starts QEMU whether or not we wait: hold the handle first
            self.domain = self.conn.createXML(self.xml, 0)  # transient: gone when destroyed
        start = time.monotonic()  # from a running QEMU (libvirt's own start-up excluded)
        if self.bridge:
            self.bridge.attach()  # QEMU holds the tap open now: it may leave the root namespace
        self._wait_for_agent(start)
        if self.bridge:
            self._check_guest_address()
        self.boot_seconds = time.monotonic() - start
        self.workdir = WORKDIR

    def _wait_for_agent(self, start: float) -> None:
        while time.monotonic() - start < BOOT_TIMEOUT:
            if not self.domain.isActive():
                raise BenchError(f"{self.name}: the guest stopped while booting; its console log is in the "
                                 f"run folder under raw/{self.name}/provision/")
            try:
                self._agent({"execute": "guest-ping"}, timeout=2)
                return
            except Exception:
                time.sleep(0.5)
        raise BenchError(f"{self.name}: the guest agent did not answer within {BOOT_TIMEOUT:.0f} s; its "
                         f"console log is in the run folder under raw/{self.name}/provision/")

    def _check_guest_address(self) -> None:
        """An image older than bench.ip support would boot with slirp's address: say so now
        rather than let every client time out."""
        shown = self.exec(["ip", "-4", "-o", "addr", "show"], timeout=60).stdout
        # "2: enp1s0    inet 10.0.2.15/24 scope global enp1s0 ..." -> "enp1s0 10.0.2.15/24"
        addresses = [f"{f[1]} {f[3]}" for f in (line.split() for line in shown.splitlines()) if len(f) > 3]
        if f"{self.bridge.guest_cidr}" not in [a.split()[1] for a in addresses]:
            raise BenchError(f"{self.name}: the guest did not take its bridge address {self.bridge.guest_cidr} "
                             f"(an image without bench.ip support? `bench image build`); it has "
                             f"{', '.join(addresses) or 'no IPv4 address'}")

    def _check_guest_devices(self) -> None:
        """The guest's own sysfs must say its NIC and disks are the variant's (a kernel that
        lacked the driver would leave the NIC without a driver, or boot from nothing)."""
        r = self.exec(["sh", "-c", PROBE_SCRIPT, WORKDIR], timeout=60)
        self.device_probe = r.stdout + r.stderr
        self.devices = parse_probe(r.stdout, WORKDIR)
        wrong = mismatches(self.devices, self.variant.nic_model, self.variant.disk_bus)
        if wrong:
            raise BenchError(f"{self.name}: the guest is not the variant it should be: {'; '.join(wrong)} "
                             f"(its own words are in raw/{self.name}/provision/guest-devices.txt)")

    def teardown(self) -> None:
        """Destroy the guest, then its network and disks. A connection that libvirtd lost (it
        was restarted) is opened anew and the domain looked up by name; a guest that cannot be
        destroyed keeps its disk folder (QEMU still has the disks open) and is named in the
        error, with the command that removes both."""
        for extra in list(self.instances):  # the density suite's, if a stop was cut short
            extra.stop()
            extra.discard()
        if self.domain is not None:
            name = f"bench-{self.run_id}-{self.name}"  # the domain's name, known without libvirtd
            try:
                _destroy_by_name(self.conn, name)
            except Exception:
                try:  # a new connection: a restarted libvirtd takes a few seconds to answer
                    _retry(lambda: _destroy_by_name(None, name), RECONNECT_SECONDS)
                except Exception as e:
                    self._close()
                    raise BenchError(f"{self.name}: the guest {name} could not be destroyed "
                                     f"({str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}); "
                                     f"its disks are kept in {self.folder}: `bench cleanup --run-id {self.run_id}` "
                                     f"removes both once libvirtd answers") from None
            self.domain = None
        self._close()
        if self.bridge is not None:
            self.bridge.delete()  # after QEMU: the namespace takes the bridge and tap with it
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def _close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # a connection libvirtd dropped: nothing left to close
                pass
            self.conn = None

    # -- the guest agent ---------------------------------------------------------------------

    def _agent(self, command: dict[str, Any], timeout: int = 10) -> Any:
        return guest_agent.command(self.domain, command, timeout)

    def _exec(self, argv: list[str], timeout: float, cwd: str | None) -> ExecResult:
        return guest_agent.run(self.domain, argv, timeout, cwd)

    def _put_file(self, path: str, data: bytes) -> None:
        self.exec(["mkdir", "-p", str(Path(path).parent)], timeout=30)
        guest_agent.write(self.domain, path, data)

    def _get_file(self, path: str) -> bytes:
        return guest_agent.read(self.domain, path)

    def _start_server(self, argv: list[str], log_name: str) -> Server:
        base = f"{self.workdir}/{log_name}"
        guest_agent.start(self.domain, ["sh", "-c", SERVER_SCRIPT, base, *argv])
        return PidFileServer(self, base)

    # A guest holds its memory and boots for seconds: few at once (fewer still emulated, below).
    instance_cap = 8
    TCG_INSTANCE_CAP = 2  # under TCG every guest's boot is the host's CPU work: two at once

    def instance(self, index: int, n_ports: int = 0) -> Instance:
        return LibvirtInstance(self, index, n_ports)

    def instance_memory_bound_mib(self) -> float:
        return self.variant.memory_mib + 256.0  # the guest's RAM, once touched, and QEMU's own

    def endpoint(self, port: int) -> tuple[str, int]:
        if self.bridge:
            return self.bridge.guest_address, port  # reachable from inside the namespace only
        return self.publish_address, port  # forwarded 1:1 there by QEMU's user-mode net

    def client_command(self, argv: list[str]) -> list[str]:
        return self.bridge.client_command(argv) if self.bridge else argv

    def variant_as_run(self) -> BaseModel:
        return self.variant.model_copy(update={"accel": self.accel})   # KVM, or TCG where KVM cannot run

    def effective_variant(self) -> dict[str, Any]:
        # Every sample says which network it crossed, whether vhost-net carried it, and which
        # devices (paravirtual or emulated) and guest kernel it went through.
        return {**super().effective_variant(), "accel": self.accel, "network": self.variant.network,
                "vhost": uses_vhost(self.variant, self.accel), "nic_model": self.variant.nic_model,
                "disk_bus": self.variant.disk_bus, "kernel": self.variant.kernel}

    def artifacts(self) -> dict[str, str]:
        found = dict(self.kept_artifacts)
        if self.console_log and os.path.exists(self.console_log):
            found["console.log"] = Path(self.console_log).read_text(errors="replace")
        if self.xml:
            found["domain.xml"] = self.xml
        if self.device_probe:
            found["guest-devices.txt"] = self.device_probe
        return found

    def metadata(self) -> dict[str, Any]:
        from .. import image

        guest_kernel = self.exec(["uname", "-r"], timeout=30).stdout.strip()
        version = self.conn.getVersion()
        lib = self.conn.getLibVersion()
        return {
            "env_kind": self.kind,
            "accel": self.accel,
            "accel_reason": self.accel_reason,
            "emulated": self.accel == "tcg",
            "domain_type": "kvm" if self.accel == "kvm" else "qemu",
            "libvirt_version": _dotted(lib),
            "qemu_version": _dotted(version),
            "guest_kernel": guest_kernel or "unavailable",
            "vcpus": self.variant.vcpus or os.cpu_count() or 1,
            "memory_mib": self.variant.memory_mib,
            "cpu_mode": cpu_mode(self.variant, self.accel),
            # vCPU i -> host CPU, by (socket, core, thread) position (topology.py)
            "vcpu_pinning": (" ".join(f"{v}:{c}" for v, c in enumerate(self.pinning)) if self.pinning else "none"),
            "disk_format": self.variant.disk_format,
            "disk_cache": "none",
            "disk_io": "native",
            "network_mode": (f"bridge in network namespace {self.bridge.namespace}, guest {self.bridge.guest_address}"
                             if self.bridge else f"user-mode (QEMU slirp), guest ports forwarded to {self.publish_address}"),
            "vhost_net": uses_vhost(self.variant, self.accel),
            "machine": machine_type(self.variant),
            "kernel_flavour": self.variant.kernel,
            "nic_model": self.variant.nic_model,
            "disk_bus": self.variant.disk_bus,
            # read from inside the booted guest (sysfs), not assumed from the variant
            "guest_nic_driver": self.devices.nic_driver if self.devices else "unavailable",
            "guest_disk_driver": self.devices.data_disk_driver if self.devices else "unavailable",
            "guest_root_disk_driver": self.devices.root_disk_driver if self.devices else "unavailable",
            "image_tag": image.recipe().tag,
            "boot_to_ready_seconds": round(self.boot_seconds, 3),
        }


class LibvirtInstance(Instance):
    """One more guest of the environment's variant, made by the same domain code from the same
    image: its disks are made before the clock starts (prepare), the start is the domain's
    creation until its agent answers a first exec, the stop its destruction. Under TCG it
    boots emulated, as the environment did, and says so."""

    def __init__(self, parent: LibvirtEnvironment, index: int, n_ports: int):
        env = LibvirtEnvironment(f"{parent.name}-i{index}", parent.variant, parent.run_id,
                                 allow_tcg=parent.allow_tcg, **parent.passed_on())
        # The acceleration the environment booted with: probed once, not again per instance.
        env.accel, env.accel_reason = parent.accel, parent.accel_reason
        super().__init__(env, parent)
        self.parent = parent
        self.n_ports = n_ports

    def _prepare(self) -> None:
        self.parent.instances.append(self)
        try:
            self.env._make(self.n_ports, boot=False)
        except BaseException:
            self.env.teardown()
            raise

    def _start(self) -> None:
        self.env._boot()

    def _stop(self) -> None:
        if self.env.domain is not None:
            _destroy_by_name(self.env.conn, f"bench-{self.env.run_id}-{self.env.name}")
            self.env.domain = None

    def discard(self) -> None:
        self.env.teardown()  # its connection, namespace and disk folder
        if self in self.parent.instances:
            self.parent.instances.remove(self)

    def _host_pids(self) -> list[int]:
        import psutil

        marker = f"guest=bench-{self.env.run_id}-{self.env.name},"
        for p in psutil.process_iter(["name", "cmdline"]):
            if (p.info["name"] or "").startswith("qemu-system") and any(marker in a for a in p.info["cmdline"] or []):
                return [p.pid]
        return []
