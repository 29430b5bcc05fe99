"""Suites, workloads and environments, read from the data folder (workloads/) and validated.

Everything is checked when it is loaded, before anything is provisioned: an error names the
file, the key and what was expected, and an unknown name suggests the nearest valid one.

    workloads/environments.yaml      name -> {kind, description, variant parameters, profiles}
    workloads/catalogue/<tool>.yaml  name -> {tool, description, warmups, params, profiles}
    workloads/suites/<suite>.yaml    {description, profile, repetitions, workloads: [names]}
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import datadir, datafile
from .datafile import excerpt, shown
from .environments import KINDS
from .errors import ConfigError, unknown
from .model import valid_name
from .workloads import TOOLS, facts_of

PROFILES = ("quick", "lab")  # quick: a 2-core CI machine in minutes; lab: the study's scale

DEFAULT_ROOT = datadir.DEFAULT


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvironmentSpec(BaseModel):
    # Variant parameters sit beside kind and description; the kind's own model checks them.
    # `profiles` overrides some of them per size profile (a lab VM needs more memory).
    model_config = ConfigDict(extra="allow", frozen=True)
    kind: str
    description: str = ""
    profiles: dict[str, dict[str, Any]] = {}
    # A variant answers one question against one default: `dimension` names the question
    # (security, storage-driver, ...), `baseline` the environment it is compared with. The
    # report groups each dimension's environments beside their baseline.
    dimension: str = ""
    baseline: str = ""
    # The tools whose results this choice can move (a network choice: netperf, redis...); the
    # report judges the variant on those only. Empty: every tool.
    affects: list[str] = []
    # false: run only when asked for by name (--env, or a suite's `environments`), not in the
    # "every environment available" default: a variant that makes daemon-wide changes (a
    # swarm, a second dockerd) or answers a narrower question than the study's.
    by_default: bool = True

    @property
    def variant(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def variant_for(self, profile: str) -> dict[str, Any]:
        return {**self.variant, **self.profiles.get(profile, {})}


class GuestSize(_Strict):
    """A VM guest's size for one workload, as the study sized its guests per test (its netperf
    and Redis guests had 1 vCPU). Unset: the environment's own (all the host's CPUs)."""
    vcpus: int | None = Field(default=None, gt=0)
    memory_mib: int | None = Field(default=None, gt=0)


class WorkloadSpec(_Strict):
    tool: str
    description: str = ""
    warmups: int = Field(default=1, ge=0)
    timeout: float | None = Field(default=None, gt=0)  # seconds per repetition; else the tool's default
    params: dict[str, Any] = {}
    profiles: dict[str, dict[str, Any]] = {}
    guest: dict[str, GuestSize] = {}   # per profile: the libvirt guest this workload runs in


class SuiteSpec(_Strict):
    description: str = ""
    profile: str = "quick"
    repetitions: int = Field(default=3, ge=1)
    workloads: list[str] = Field(min_length=1)
    # The environments the suite runs in when --env does not say (default: every one available
    # here), and, per workload, the only environments it runs in (default: all of them). A
    # variants suite pairs each question's workload with its dimension's environments only.
    environments: list[str] = []
    only: dict[str, list[str]] = {}

    @field_validator("workloads", "environments")
    @classmethod
    def once_each(cls, names: list[str]) -> list[str]:
        """A workload named twice would run twice as the same repetitions (its samples
        duplicated, n counted once): a slip in the file, refused."""
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} named twice; each may appear once")
        return names


@dataclasses.dataclass(frozen=True)
class WorkloadConfig:
    """A catalogue entry resolved for one profile: what the runner needs to run a cell."""

    name: str
    tool: str
    description: str
    warmups: int
    timeout: float
    params: BaseModel      # the tool's Params, validated once: what its run, argv and parse receive
    guest: dict[str, int] = dataclasses.field(default_factory=dict)  # vcpus, memory_mib; {}: the environment's
    # The parameters a repetition sweeps (the tool's `sweeps`): a sample's point. A run made
    # before bench recorded them has none in its run.json; the statistics then infer them.
    sweep_keys: list[str] = dataclasses.field(default_factory=list)
    # The tool's facts (workloads.base.Facts: its resource, extra metrics, whether a win over
    # native is plausible, whether it is client/server), recorded so that the report reads them
    # from the run; {}: a run made before bench recorded them (workloads.facts_of falls back).
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """As run.json keeps it (and `bench list --json` shows it): every parameter, defaults too."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "params"} | {
            "params": self.params.model_dump()}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "WorkloadConfig":
        """From run.json (a resumed run): its parameters validated by its tool's model. Raises
        KeyError (an unknown tool, a missing key), TypeError or ValueError."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in fields and k not in ("params", "facts")},
                   params=TOOLS[doc["tool"]].Params.model_validate(doc["params"]),
                   facts=facts_of(doc["tool"], doc.get("facts")).to_json())


def _where(loc: tuple) -> str:
    return ".".join(shown(p) for p in loc)


def _validation_error(path: Path, prefix: str, e: ValidationError) -> ConfigError:
    err = e.errors()[0]
    key = ".".join(p for p in (prefix, _where(err["loc"])) if p)
    got = f" (got {excerpt(err['input'])})" if err["type"] not in ("missing", "extra_forbidden") else ""
    more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
    return ConfigError(f"{path}: {key or 'top level'}: {err['msg']}{got}{more}")


def _validated(model: type[BaseModel], body: Any, path: Path, prefix: str) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as e:
        raise _validation_error(path, prefix, e) from None


def _read_yaml(path: Path) -> Any:
    return datafile.read_yaml(path)


def _mapping(path: Path, doc: Any) -> dict[str, Any]:
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping of names to definitions, got {type(doc).__name__}")
    for name in doc:
        if not isinstance(name, str) or not valid_name(name):
            raise ConfigError(f"{path}: {excerpt(name)}: names are lower-case letters, digits, '-' and '_', "
                              f"starting with a letter")
    return doc


@dataclasses.dataclass
class Catalogue:
    root: Path
    environments: dict[str, EnvironmentSpec]
    workloads: dict[str, WorkloadSpec]
    suites: dict[str, SuiteSpec]
    sources: dict[str, Path]  # workload or suite name -> the file that defined it
    # (environment, profile) -> its variant as its kind's model validated it, once, at load
    variants: dict[tuple[str, str], BaseModel] = dataclasses.field(default_factory=dict)

    # -- lookup with helpful errors -----------------------------------------------------------

    def suite(self, name: str) -> SuiteSpec:
        if name not in self.suites:
            raise unknown("suite", name, self.suites)
        return self.suites[name]

    def environment(self, name: str) -> EnvironmentSpec:
        if name not in self.environments:
            raise unknown("environment", name, self.environments)
        return self.environments[name]

    def variant(self, name: str, profile: str) -> BaseModel:
        """An environment's variant for a profile, typed by its kind's model."""
        self.environment(name)
        if profile not in PROFILES:
            raise unknown("profile", profile, PROFILES)
        return self.variants[(name, profile)]

    def workload(self, name: str, profile: str) -> WorkloadConfig:
        if name not in self.workloads:
            raise unknown("workload", name, self.workloads)
        if profile not in PROFILES:
            raise unknown("profile", profile, PROFILES)
        spec = self.workloads[name]
        tool = TOOLS[spec.tool]
        merged = {**spec.params, **spec.profiles.get(profile, {})}
        params = _validated(tool.Params, merged, self.sources[name], f"{name}.params[{profile}]")
        timeout = spec.timeout or tool.timeout(params)
        guest = spec.guest.get(profile)
        return WorkloadConfig(name, spec.tool, spec.description, spec.warmups, timeout, params,
                              guest.model_dump(exclude_none=True) if guest else {}, list(tool.sweeps),
                              tool.facts().to_json())


def load(root: Path | None = None) -> Catalogue:
    """Read and check the whole data folder. Raises ConfigError on the first problem."""
    root = Path(root) if root else DEFAULT_ROOT
    if not root.is_dir():
        raise ConfigError(f"{root}: no such configuration folder (set BENCH_CONFIG_DIR or --config-dir)")
    datadir.use(root)  # files the catalogue names (a compose file) are found beside it
    sources: dict[str, Path] = {}

    env_path = root / "environments.yaml"
    environments: dict[str, EnvironmentSpec] = {}
    variants: dict[tuple[str, str], BaseModel] = {}
    for name, body in _mapping(env_path, _read_yaml(env_path)).items():
        spec = _validated(EnvironmentSpec, body, env_path, name)
        if spec.kind not in KINDS:
            raise unknown("environment kind", spec.kind, KINDS, where=f"{env_path}: {name}.kind")
        for profile in spec.profiles:
            if profile not in PROFILES:
                raise unknown("profile", profile, PROFILES, where=f"{env_path}: {name}.profiles")
        for profile in PROFILES:
            variants[(name, profile)] = _validated(KINDS[spec.kind].Variant, spec.variant_for(profile), env_path,
                                                   f"{name}[{profile}]" if profile in spec.profiles else name)
        environments[name] = spec
    for name, spec in environments.items():
        if spec.baseline and spec.baseline not in environments:
            raise unknown("environment", spec.baseline, environments, where=f"{env_path}: {name}.baseline")
        if bool(spec.baseline) != bool(spec.dimension):
            raise ConfigError(f"{env_path}: {name}: a variant needs both `dimension` and `baseline`")
        if spec.affects and not spec.dimension:
            raise ConfigError(f"{env_path}: {name}: `affects` belongs to a variant (one with a `dimension`)")
        for tool in spec.affects:
            if tool not in TOOLS:
                raise unknown("tool", tool, TOOLS, where=f"{env_path}: {name}.affects")

    workloads: dict[str, WorkloadSpec] = {}
    for path in sorted((root / "catalogue").glob("*.yaml")):
        for name, body in _mapping(path, _read_yaml(path)).items():
            if name in workloads:
                raise ConfigError(f"{path}: workload '{name}' is already defined in {sources[name]}")
            spec = _validated(WorkloadSpec, body, path, name)
            if spec.tool not in TOOLS:
                raise unknown("tool", spec.tool, TOOLS, where=f"{path}: {name}.tool")
            for field in ("profiles", "guest"):
                for profile in getattr(spec, field):
                    if profile not in PROFILES:
                        raise unknown("profile", profile, PROFILES, where=f"{path}: {name}.{field}")
            workloads[name] = spec
            sources[name] = path

    # Resolve every entry for every profile now, so a bad parameter fails here, not mid-run.
    partial = Catalogue(root, environments, workloads, {}, sources, variants)
    for name in workloads:
        for profile in PROFILES:
            partial.workload(name, profile)

    suites: dict[str, SuiteSpec] = {}
    for path in sorted((root / "suites").glob("*.yaml")):
        name = path.stem
        if not valid_name(name):
            raise ConfigError(f"{path}: suite file names are lower-case letters, digits, '-' and '_'")
        doc = _read_yaml(path)
        spec = _validated(SuiteSpec, doc if doc is not None else {}, path, "")
        if spec.profile not in PROFILES:
            raise unknown("profile", spec.profile, PROFILES, where=f"{path}: profile")
        for w in spec.workloads:
            if w not in workloads:
                raise unknown("workload", w, workloads, where=f"{path}: workloads")
        for e in spec.environments:
            if e not in environments:
                raise unknown("environment", e, environments, where=f"{path}: environments")
        for w, envs in spec.only.items():
            if w not in spec.workloads:
                raise unknown("workload", w, spec.workloads, where=f"{path}: only")
            for e in envs:
                if e not in environments:
                    raise unknown("environment", e, environments, where=f"{path}: only.{w}")
        suites[name] = spec
        sources[f"suite:{name}"] = path

    return Catalogue(root, environments, workloads, suites, sources, variants)
