"""Platforms an architect asks about that bench cannot run on this kind of machine
(Kubernetes, Windows containers, Hyper-V): listed, so that `bench list` answers the question
with why not instead of leaving it out, and refused before anything is made if asked for."""

from __future__ import annotations

from typing import Any, NoReturn

from pydantic import BaseModel, ConfigDict

from ..errors import BenchError
from .base import Availability, Environment, ExecResult, Server


class UnsupportedVariant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    requires: str  # what running it would take, in a user's words


class UnsupportedEnvironment(Environment):
    kind = "unsupported"
    Variant = UnsupportedVariant

    @classmethod
    def availability(cls, variant: BaseModel, allow_tcg: bool = False) -> Availability:
        return Availability(False, f"not supported by bench: needs {variant.requires}")

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        # availability() is always False, so the runner never gets here; if code does, say why.
        raise BenchError(f"environment '{self.name}' cannot run: {self.availability(self.variant).reason}")

    def _provision(self, scratch_root: str, n_ports: int) -> None:
        self._refuse()

    def teardown(self) -> None:
        pass  # nothing was ever made

    def _exec(self, argv: list[str], timeout: float, cwd: str | None) -> ExecResult:
        self._refuse()

    def _put_file(self, path: str, data: bytes) -> None:
        self._refuse()

    def _get_file(self, path: str) -> bytes:
        self._refuse()

    def _start_server(self, argv: list[str], log_name: str) -> Server:
        self._refuse()

    def endpoint(self, port: int) -> tuple[str, int]:
        self._refuse()

    def metadata(self) -> dict[str, Any]:
        return {"requires": self.variant.requires}
