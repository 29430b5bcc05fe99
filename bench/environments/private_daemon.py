"""A daemon of one environment of one run, started and stopped by bench itself: a second dockerd
(dockerd.py) or a `podman system service` (podman.py), both speaking the Docker API on a socket.

What they share: a folder of their own under a root folder (a short name hashed from run and
environment: unix sockets lie under it), an owner.json written first that names the run, the
environment and then the daemon's pid, so that `bench cleanup` finds what a killed run left; a
start by pid in a session of its own with nothing of bench's open but its log (a Ctrl-C meant for
bench must not kill it uncleanly, and a daemon holds whatever it inherits for as long as it
runs), a wait until its API answers, and a stop by that pid, only while the pid's command line
still names the folder (the number may be someone else's by now).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import interrupts
from ..errors import BenchError

START_TIMEOUT = 60.0


def folder_name(seed: str) -> str:
    """12 hex digits of the seed's hash: short, for the unix sockets under the folder (sun_path
    holds 108 bytes, which a default run id and a long environment name used to exceed)."""
    return hashlib.sha256(seed.encode()).hexdigest()[:12]


class PrivateDaemon:
    """The folder, start and log of one such daemon; the kind's class adds its command line and
    its stop (a dockerd's bridge, Podman's containers in the shared store)."""

    what = "a daemon"              # in messages: "the second dockerd", "podman system service"
    socket_name = "daemon.sock"
    log_name = "daemon.log"

    def __init__(self, run_id: str, environment: str, folder: Path):
        self.run_id = run_id
        self.environment = environment
        self.folder = folder
        self.pid: int | None = None
        self.made = False   # the folder is ours: stop() has something to remove

    @property
    def socket(self) -> Path:
        return self.folder / self.socket_name

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log(self) -> Path:
        return self.folder / self.log_name

    def make_folder(self, **owner: Any) -> None:
        """The daemon's folder with its owner.json (run, environment, and what else the kind
        records); refused if it exists: that run is going on, or was killed."""
        if self.folder.exists():
            raise BenchError(f"{self.folder} already exists: a run with this id is going on or was killed "
                             f"(`bench cleanup --run-id {self.run_id}`)")
        self.made = True
        self.folder.mkdir(parents=True)
        self._owner = {"run_id": self.run_id, "environment": self.environment, **owner}
        (self.folder / "owner.json").write_text(json.dumps(self._owner))

    def launch(self, argv: list[str]) -> None:
        """Start argv in the folder, its output to the log, and wait until its API answers."""
        with open(self.log, "wb") as log, interrupts.deferred():  # its pid is known before a signal stops us
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=self.folder, start_new_session=True)
            self.pid = proc.pid
            (self.folder / "owner.json").write_text(json.dumps({**self._owner, "pid": proc.pid}))
        wait_for_api(proc, self.socket, self.what, self.log)

    def log_tail(self, lines: int = 3) -> str:
        return log_tail(self.log, lines)


def owned_folders(root: Path) -> Iterator[tuple[Path, str | None]]:
    """Every daemon's folder under root, with the run its owner.json names (None when it names
    none: killed before it was written, or not a folder of bench's)."""
    if not root.is_dir():
        return
    for folder in sorted(root.iterdir()):
        try:
            owner = json.loads((folder / "owner.json").read_text()).get("run_id")
        except (OSError, ValueError, AttributeError):
            owner = None
        yield folder, owner


def recorded_pid(folder: Path) -> int | None:
    """The pid owner.json recorded for the daemon, if any."""
    try:
        return int(json.loads((folder / "owner.json").read_text()).get("pid"))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stop_pid(pid: int | None, marker: str, timeout: float) -> None:
    """SIGTERM pid, then SIGKILL after timeout, but only while its command line names our folder:
    a pid file may outlive its process, and the number may belong to someone else by now."""
    if pid is None or marker not in cmdline(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker not in cmdline(pid):
            return
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_for_api(proc: subprocess.Popen, socket: Path, what: str, log: Path) -> None:
    """Wait until a daemon bench started answers a ping of the Docker API on its socket; say so
    from its log if it exits or stays silent."""
    import docker

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode}: {log_tail(log)}")
        if socket.exists():
            try:
                c = docker.DockerClient(base_url=f"unix://{socket}", timeout=5)
                try:
                    c.ping()
                    return
                finally:
                    c.close()
            except Exception:  # noqa: BLE001 -- not answering yet
                pass
        time.sleep(0.3)
    raise BenchError(f"{what} did not answer within {START_TIMEOUT:.0f} s: {log_tail(log)}")


def log_tail(log: Path, lines: int = 3) -> str:
    """The last lines of a daemon's log, as one line of an error."""
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " | ".join(text[-lines:]) or "empty log"
