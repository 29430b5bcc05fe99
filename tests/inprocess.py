"""An environment kind of the tests' own, for fast tests of the runner's logic (plan, schedule,
failures, re-provisioning, resume, adaptive rounds) without minutes of real tools.

It is this host (every command runs here for real: the parity probe, version queries, mkdir),
except the measured tool: sysbench's `run` is answered with an output recorded from the real
sysbench (tests/data/sysbench/cpu-2threads.txt), its events per second scaled by a factor of
the script, in milliseconds. A script says, call by call, what happens instead: the tool fails
(status 1), the environment is gone (the tool killed, then every command raises, as a
backend's client does: a backend fault), or the run is interrupted. The kind is
registered with bench by `register()` for one test (monkeypatch), never discovered: it lives
here, not in bench/environments/.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from bench.environments.base import Availability, ExecResult
from bench.environments.host import HostEnvironment

RECORDED = Path(__file__).parent / "data" / "sysbench" / "cpu-2threads.txt"

# What each measured call does, per environment name, in call order (warm-ups included): a
# number scales the recorded result; "tool" fails the tool; "gone" makes the environment vanish
# (until it is provisioned anew); "dying" is the same, but one more command succeeds first (a
# container being removed); "interrupt" raises KeyboardInterrupt, as a Ctrl-C would.
# "down" is "gone", and the backend then answers nothing (availability, provisioning) for
# DOWN_SECONDS, as a daemon killed and restarted by its supervisor. "bug" is a programming error
# in the kind (an AttributeError), which no backend explains.
SCRIPTS: dict[str, list[Any]] = {}
DOWN_SECONDS = 3.0
BACK_AT: list[float] = [0.0]        # time.monotonic() at which the backend answers again
CALLS: dict[str, int] = {}          # measured calls so far, per environment
PROVISIONED: dict[str, int] = {}    # provisionings, per environment


class InProcessVariant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    label: str = ""   # a variant parameter, so that samples carry one


class InProcessEnvironment(HostEnvironment):
    kind = "inprocess"
    catalogued = False   # the tests register it; bench never finds it
    Variant = InProcessVariant

    def __init__(self, name: str, variant: Any, run_id: str, **given: Any):
        super().__init__(name, variant, run_id, **given)
        self.gone = False
        self.dying = False   # killed, and gone after one more command

    @classmethod
    def availability(cls, variant: Any, allow_tcg: bool = False) -> Availability:
        if time.monotonic() < BACK_AT[0]:
            return Availability(False, "its daemon does not answer (tests)")
        return Availability(True, "in process (tests)")

    def _provision(self, scratch_root: str, n_ports: int) -> None:
        if time.monotonic() < BACK_AT[0]:
            raise ConnectionError("its daemon does not answer (tests)")
        super()._provision(scratch_root, n_ports)
        PROVISIONED[self.name] = PROVISIONED.get(self.name, 0) + 1

    def _exec(self, argv: list[str], timeout: float, cwd: str | None) -> ExecResult:
        if self.gone:  # as a backend answers for a removed container: an error of its own, no status
            raise ConnectionError("the environment is gone (tests)")
        if self.dying:  # a command still starts there while it is being removed; then it is gone
            self.dying, self.gone = False, True
            return super()._exec(argv, timeout, cwd)
        tool = argv[argv.index("bench-context") + 1:] if "bench-context" in argv else argv
        if tool[:1] != ["sysbench"] or tool[-1:] != ["run"]:
            return super()._exec(argv, timeout, cwd)
        n = CALLS.get(self.name, 0)
        CALLS[self.name] = n + 1
        script = SCRIPTS.get(self.name, [])
        action = script[n] if n < len(script) else 1.0
        if action == "interrupt":
            raise KeyboardInterrupt
        if action == "bug":  # a programming error of the kind's: bench's, not the backend's
            return None.returncode  # type: ignore[attr-defined]
        if action in ("gone", "down"):  # removed under the running tool: it ends, killed, and then nothing answers
            self.gone = True
            if action == "down":
                BACK_AT[0] = time.monotonic() + DOWN_SECONDS
            return ExecResult(argv, 137, "", "the container was removed", 0.01)
        if action == "dying":  # removed under the tool, but not yet gone when asked at once
            self.dying = True
            return ExecResult(argv, 137, "", "killed", 0.01)
        if action == "tool":
            return ExecResult(argv, 1, "", "sysbench 1.0.20\nFATAL: a failure of the tool itself\n\n", 0.01)
        text = RECORDED.read_text()
        text = re.sub(r"(events per second:\s*)([\d.]+)",
                      lambda m: f"{m.group(1)}{float(m.group(2)) * float(action):.2f}", text)
        time.sleep(0.001)
        return ExecResult(argv, 0, text, "", 0.01)


class InProcessGuestVariant(InProcessVariant):
    """A guest's size, as a VM's variant has it (environments/domain.py)."""
    vcpus: int | None = None
    memory_mib: int = 2048


class InProcessGuest(InProcessEnvironment):
    """The kind with a guest's size: the runner boots it anew at the size a workload asks for
    (runner._fit_guest), which a guest under TCG takes half a minute a boot to show."""
    kind = "inprocess-guest"
    Variant = InProcessGuestVariant


def register(monkeypatch, config: Path, environments: dict[str, dict[str, Any]]) -> None:
    """The kind known to bench for one test, and these environments of it in the catalogue copy."""
    import yaml

    from bench.environments import KINDS

    for kind in (InProcessEnvironment, InProcessGuest):
        monkeypatch.setitem(KINDS, kind.kind, kind)
    SCRIPTS.clear()
    BACK_AT[0] = 0.0
    CALLS.clear()
    PROVISIONED.clear()
    path = config / "environments.yaml"
    doc = yaml.safe_load(path.read_text())
    for name, body in environments.items():   # a body may name its kind: InProcessGuest.kind
        doc[name] = {"kind": InProcessEnvironment.kind, "description": "in process (tests)", **body}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
