"""The QEMU guest agent as bench uses it, through libvirt: a command to completion under a
timeout, files in and out in chunks, a process in the background. The harness controls a guest
only this way (virtio-serial: no SSH keys or passwords to manage); what it cannot do (a timeout,
a working folder) coreutils' timeout and a shell inside the guest do."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from .base import ExecResult

# Bytes per guest-file-read/-write: a larger message can outlast the agent's timeout under TCG,
# after which libvirt considers the agent gone for good.
AGENT_CHUNK = 64 << 10


def command(domain, request: dict[str, Any], timeout: int = 10) -> Any:
    """One agent command's answer (libvirt.libvirtError if the agent or libvirtd does not answer)."""
    import libvirt_qemu

    reply = libvirt_qemu.qemuAgentCommand(domain, json.dumps(request), timeout, 0)
    return json.loads(reply)["return"]


def run(domain, argv: list[str], timeout: float, cwd: str | None) -> ExecResult:
    """argv to completion in the guest; the agent has neither a timeout nor a working folder for
    guest-exec: coreutils' timeout (which signals the whole process group) and a cd in sh do."""
    wrapped = ["timeout", "-k", "5", f"{timeout:.0f}", *argv]
    if cwd:
        wrapped = ["sh", "-c", 'cd "$0" && exec "$@"', cwd, *wrapped]
    start = time.monotonic()
    pid = command(domain, {"execute": "guest-exec", "arguments": {
        "path": wrapped[0], "arg": wrapped[1:], "capture-output": True}})["pid"]
    while True:
        status = command(domain, {"execute": "guest-exec-status", "arguments": {"pid": pid}})
        if status.get("exited"):
            break
        if time.monotonic() - start > timeout + 60:  # the guest itself is stuck
            return ExecResult(argv, None, "", "the guest agent stopped answering", time.monotonic() - start, True)
        time.sleep(0.05)
    duration = time.monotonic() - start
    out = base64.b64decode(status.get("out-data", "")).decode(errors="replace")
    err = base64.b64decode(status.get("err-data", "")).decode(errors="replace")
    code = status.get("exitcode", 128 + status.get("signal", 0))
    timed_out = code in (124, 137) and duration >= timeout - 1
    return ExecResult(argv, None if timed_out else code, out, err, duration, timed_out)


def write(domain, path: str, data: bytes) -> None:
    """A file in an existing folder of the guest."""
    handle = command(domain, {"execute": "guest-file-open", "arguments": {"path": path, "mode": "w"}})
    try:
        for i in range(0, len(data), AGENT_CHUNK):
            chunk = base64.b64encode(data[i:i + AGENT_CHUNK]).decode()
            command(domain, {"execute": "guest-file-write", "arguments": {"handle": handle, "buf-b64": chunk}},
                    timeout=60)
    finally:
        command(domain, {"execute": "guest-file-close", "arguments": {"handle": handle}})


def read(domain, path: str) -> bytes:
    """A file of the guest (FileNotFoundError when the agent cannot open it)."""
    import libvirt

    try:
        handle = command(domain, {"execute": "guest-file-open", "arguments": {"path": path, "mode": "r"}})
    except libvirt.libvirtError as e:
        raise FileNotFoundError(path) from e
    parts = []
    try:
        while True:
            r = command(domain, {"execute": "guest-file-read", "arguments": {"handle": handle, "count": AGENT_CHUNK}},
                        timeout=60)
            parts.append(base64.b64decode(r.get("buf-b64", "")))
            if r.get("eof"):
                break
    finally:
        command(domain, {"execute": "guest-file-close", "arguments": {"handle": handle}})
    return b"".join(parts)


def start(domain, argv: list[str]) -> None:
    """argv in the background in the guest, its output not captured."""
    command(domain, {"execute": "guest-exec", "arguments": {"path": argv[0], "arg": argv[1:], "capture-output": False}})
