"""The line between the two lanes of the tests, enforced: a test not marked `integration` (the
fast lane, `scripts/test.sh --fast`) needs no daemon and runs no measured tool.

While such a test runs, this process and every Python process it starts (through
lane_child/sitecustomize.py, which the PYTHONPATH set here makes Python import first) run as on
a machine without dockerd and libvirtd: a Docker client or a libvirt connection (other than
libvirt's in-process `test:` driver) fails as it does when the daemon is not there, so that
`bench list` and the plan's availability checks answer "not available" the same way on every
machine; a test that then skips needed the daemon, and fails instead (conftest.py). Starting a
daemon's command line, or a workload's program for more than its version, is refused: it
raises (a BaseException, so that no `except Exception` of bench takes it for a backend fault
and goes on) and is written to a file that the test's teardown reads, so the test fails even
if the refusal was swallowed or happened in a child.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

LOG = "BENCH_TESTS_LANE_LOG"      # the file a guarded process writes each refusal to
TOOLS = "BENCH_TESTS_LANE_TOOLS"  # the measured programs, for a child that cannot import bench
CHILD = Path(__file__).resolve().parent / "lane_child"

# The daemons, their command lines, and what they make (a VM's emulator, an image's build).
# Podman has no daemon: its command line (availability, cleanup's listing) is no daemon's.
DAEMON_PROGRAMS = frozenset({"docker", "dockerd", "containerd", "virsh", "virtlogd", "libvirtd",
                             "qemu-img", "debootstrap", "sshd"})
# Interpreters some workloads name among their programs: the tests run them for other things.
NOT_A_TOOL = frozenset({"bash", "sh", "mawk", "awk", "python3"})


# A program asked for its version only (Workload.version's queries): milliseconds, no measurement.
VERSION_FLAGS = frozenset({"--version", "-V"})
ABSENT = "no daemon for a test that is not marked integration (tests/lane.py)"
ASKED = "asked: "   # a line of the log that is no refusal


class LaneViolation(BaseException):
    """A fast-lane test touched a daemon or ran a measured tool."""


def tool_programs() -> frozenset[str]:
    from bench.workloads import TOOLS

    names = {Path(p).name for t in TOOLS.values() for p in (*t.programs, *t.client_programs)}
    return frozenset(names - NOT_A_TOOL)


def _asked(what: str) -> None:
    """A daemon asked for and told it is not there: a test that then skips needed it."""
    path = os.environ.get(LOG)
    if path:
        with open(path, "a") as f:
            f.write(ASKED + what + "\n")


def _refuse(what: str) -> None:
    message = (f"{what}: a test that is not marked integration may not touch a daemon or run a "
               "measured tool (mark it `integration`, or give it recorded outputs or the in-process kind)")
    path = os.environ.get(LOG)
    if path:
        with open(path, "a") as f:
            f.write(what + "\n")
    raise LaneViolation(message)


def _started(args) -> tuple[str, list[str]]:
    """The program args start and its arguments: the first word, or the word after the
    declared context's wrapper (environments/context.py), which is where a tool's run starts."""
    argv = [os.fsdecode(a) for a in (args.split() if isinstance(args, (str, bytes)) else args)]
    at = argv.index("bench-context") + 1 if "bench-context" in argv else 0
    return (os.path.basename(argv[at]), argv[at:]) if at < len(argv) else ("", [])


def _guard_docker(api, saved: list) -> None:
    from docker.errors import DockerException

    def no_docker(self, *a, **kw):   # as docker-py says when dockerd does not answer
        _asked("dockerd")
        raise DockerException(f"Error while fetching server API version: {ABSENT}")
    saved.append((api.APIClient, "__init__", api.APIClient.__init__))
    api.APIClient.__init__ = no_docker


def _guard_libvirt(libvirt, saved: list) -> None:
    for opener in ("open", "openReadOnly", "openAuth"):
        real = getattr(libvirt, opener)

        def guarded_open(uri=None, *a, _real=real, **kw):
            if not str(uri or "").startswith("test:"):   # libvirt's in-process driver is no daemon
                _asked("libvirtd")
                raise libvirt.libvirtError(f"Failed to connect socket to libvirtd at {uri}: {ABSENT}")
            return _real(uri, *a, **kw)
        saved.append((libvirt, opener, real))
        setattr(libvirt, opener, guarded_open)


class _OnImport(importlib.abc.MetaPathFinder):
    """Guards docker's client and libvirt the moment they are imported, if they were not yet:
    a child process does not import them (a tenth of a second each) only to guard them."""

    def __init__(self, guards: dict, saved: list):
        self.guards, self.saved = guards, saved

    def find_spec(self, name, path, target=None):
        guard = self.guards.pop(name, None)
        if guard is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            guard(module, self.saved)
        spec.loader.exec_module = exec_module
        return spec


def install(tools: frozenset[str]) -> list:
    """Guard this process; returns what uninstall() restores."""
    saved: list = []
    popen_init = subprocess.Popen.__init__

    def guarded_popen(self, args, *a, **kw):
        name, command = _started(args)
        if name in DAEMON_PROGRAMS or name.startswith("qemu-system-") or \
                name in tools and not (len(command) == 2 and command[1] in VERSION_FLAGS):
            _refuse(f"started `{' '.join(command)[:200]}`")
        popen_init(self, args, *a, **kw)

    saved.append((subprocess.Popen, "__init__", popen_init))
    subprocess.Popen.__init__ = guarded_popen
    later = {}
    for name, guard in (("docker.api.client", _guard_docker), ("libvirt", _guard_libvirt)):
        if name in sys.modules:
            guard(sys.modules[name], saved)
        else:
            later[name] = guard
    finder = _OnImport(later, saved)
    sys.meta_path.insert(0, finder)
    saved.append((finder, "guards", {}))   # restored first: a later import is left alone
    return saved


def uninstall(saved: list) -> None:
    for owner, name, value in reversed(saved):
        setattr(owner, name, value)
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _OnImport)]


class Guard:
    """The guard around one test: this process, and the Python processes it starts."""

    def __init__(self):
        self.tools = tool_programs()
        fd, name = tempfile.mkstemp(prefix="bench-lane-")
        os.close(fd)
        self.log = Path(name)
        path = os.environ.get("PYTHONPATH")
        self.variables = {LOG: str(self.log), TOOLS: " ".join(sorted(self.tools)),
                          "PYTHONPATH": str(CHILD) + (os.pathsep + path if path else "")}
        self.before = {k: os.environ.get(k) for k in self.variables}
        self.saved: list = []
        self.runs = Path(tempfile.mkdtemp(prefix="bench-lane-runs-"))

    def start(self) -> None:
        from bench import live

        self.saved = install(self.tools)
        # The machine's registry of live runs (bench/live.py) is shared by every test process
        # and session here, and the tests of this lane name their runs "r": each test has one
        # of its own, so that two processes of the lane (pytest -n) never take one's run for
        # the other's. (Its child processes, which no test of this lane lets run a tool, keep
        # the machine's.)
        self.saved.append((live, "registry", live.registry))
        live.registry = lambda: self.runs
        os.environ.update(self.variables)

    def log_lines(self) -> list[str]:
        return list(dict.fromkeys(self.log.read_text().splitlines()))

    def asked(self) -> list[str]:
        """The daemons the test asked for so far (and was told they are not there)."""
        return [line[len(ASKED):] for line in self.log_lines() if line.startswith(ASKED)]

    def stop(self) -> list[str]:
        """Unguarded again; what was refused, in order, once each."""
        refused = [line for line in self.log_lines() if not line.startswith(ASKED)]
        uninstall(self.saved)
        for k, v in self.before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self.log.unlink()
        shutil.rmtree(self.runs, ignore_errors=True)
        return refused
