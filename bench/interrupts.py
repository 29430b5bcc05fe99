"""Ctrl-C and SIGTERM during a run: when they may stop it, and when they must wait.

A run turns SIGTERM (a scheduler, `kill`) into the KeyboardInterrupt Ctrl-C gives, so both tear
down alike (`as_interrupt`). Teardown itself ignores both (`ignored`): a second Ctrl-C must not
cut it short.

Between the two lies the instant a resource is made: a request to dockerd to create a
container, libvirt's createXML, the fork of a daemon. A signal that lands there, after the
daemon has made the thing and before bench holds its handle, leaves something that teardown
does not know about. `deferred` makes such a section whole: a signal that arrives inside it is
remembered and raised as soon as the section ends, when the handle is registered.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

# Signals received while the run is in progress. Python turns them into KeyboardInterrupt,
# but one that arrives inside a fork hook (subprocess with a preexec_fn runs them) or a
# finalizer is only printed as "Exception ignored" and lost; the runner checks this list
# between steps, so such a signal still stops the run and tears it down.
received: list[int] = []

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def raise_if_interrupted() -> None:
    if received:
        raise KeyboardInterrupt(f"signal {received[0]}")


@contextlib.contextmanager
def as_interrupt() -> Iterator[None]:
    """SIGTERM tears down like Ctrl-C does; both are remembered."""
    def handler(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt(f"signal {signum}")
    received.clear()
    with _handled_by(handler):
        yield


@contextlib.contextmanager
def ignored() -> Iterator[None]:
    with _handled_by(signal.SIG_IGN):
        yield


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A section that a signal does not cut: one that arrives is raised when it ends."""
    arrived: list[int] = []

    def handler(signum, frame):
        arrived.append(signum)
        received.append(signum)
    with _handled_by(handler):
        yield
    if arrived:
        raise KeyboardInterrupt(f"signal {arrived[0]}")


@contextlib.contextmanager
def _handled_by(handler) -> Iterator[None]:
    try:
        previous = {s: signal.signal(s, handler) for s in _SIGNALS}
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
