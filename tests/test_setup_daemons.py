"""scripts/setup.sh starts dockerd, virtlogd and libvirtd with none of its caller's descriptors:
its start_daemon, run while the caller holds a lock, gives a daemon only 0, 1 and 2, and the
lock is free once the caller lets it go, while the daemon still runs."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from conftest import ROOT


def start(tmp_path: Path, how: str) -> tuple[int, Path]:
    """A harmless daemon (sleep) started `how`, while this process holds a lock that the shell
    inherits; returns its pid and the lock's file."""
    lock_path, pid_path = tmp_path / "caller.lock", tmp_path / "daemon.pid"
    lock = open(lock_path, "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    daemon = tmp_path / "daemon"
    daemon.write_text(f"#!/bin/sh\necho $$ > {pid_path}\nexec sleep 120\n")
    daemon.chmod(0o755)
    try:
        subprocess.run(["bash", "-c", f"set -eu; SUDO=''; . scripts/daemon.sh; {how.format(daemon=daemon, log=tmp_path / 'log')}"],
                       cwd=ROOT, check=True, pass_fds=(lock.fileno(),), timeout=30)
        deadline = time.monotonic() + 10
        while not pid_path.exists() or not pid_path.read_text().strip():
            assert time.monotonic() < deadline, "the daemon did not start"
            time.sleep(0.05)
    finally:
        lock.close()
    return int(pid_path.read_text()), lock_path


def lock_free(path: Path) -> bool:
    with open(path) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False


def test_start_daemon_closes_the_callers_descriptors(tmp_path):
    pid, lock = start(tmp_path, "start_daemon {log} {daemon}")
    try:
        assert sorted(os.listdir(f"/proc/{pid}/fd"), key=int) == ["0", "1", "2"]
        assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
        assert os.readlink(f"/proc/{pid}/fd/1") == str(tmp_path / "log")
        assert os.getsid(pid) == pid   # a session of its own: the caller's Ctrl-C is not its
        assert lock_free(lock)
    finally:
        os.kill(pid, signal.SIGTERM)


def test_the_way_setup_used_to_start_dockerd_keeps_the_lock(tmp_path):
    # What the test above guards against, seen for real: `sh -c 'nohup ... &'`.
    pid, lock = start(tmp_path, "sh -c 'nohup {daemon} >{log} 2>&1 &'")
    try:
        assert len(os.listdir(f"/proc/{pid}/fd")) > 3
        assert not lock_free(lock)
    finally:
        os.kill(pid, signal.SIGTERM)


def test_setup_starts_every_daemon_through_start_daemon():
    script = (ROOT / "scripts" / "setup.sh").read_text()
    starts = [line.strip() for line in script.splitlines()
              if re.search(r"\b(dockerd|containerd|virtlogd|libvirtd)\b", line) and not line.strip().startswith("#")
              and not re.search(r"echo|pgrep -x \w+ >/dev/null \|\| start_daemon|virsh|docker info", line)]
    assert starts and all("start_daemon" in line for line in starts), starts
