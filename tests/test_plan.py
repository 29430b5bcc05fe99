"""The plan is resolved once, typed, and handed down as it is: what a run records of it is what
it recorded before the plan was typed (the main job's recorded run.json)."""

from __future__ import annotations

import json
import re

import pytest

from bench import config, plan
from bench.environments import KINDS
from bench.environments.host import HostEnvironment
from bench.workloads import TOOLS

from conftest import ROOT

RECORDED = next((ROOT / "reports").glob("*/run.json"))


def test_every_variant_is_validated_once_and_dumps_to_what_the_catalogue_gave():
    """A sample's variant is the catalogue's keys as given: the typed variant gives them back."""
    cat = config.load()
    for name, spec in cat.environments.items():
        for profile in config.PROFILES:
            variant = cat.variant(name, profile)
            assert isinstance(variant, KINDS[spec.kind].Variant), name
            assert variant.model_dump(mode="json", exclude_unset=True) == spec.variant_for(profile), name
            assert cat.variant(name, profile) is variant   # the same object: not validated again


def test_a_plan_hands_down_the_catalogues_own_typed_objects(tmp_path):
    cat = config.load()
    p = plan.resolve(cat, plan.RunOptions(suite="quick", environments=["host"], out=tmp_path))
    host = p.environments["host"]
    assert host.kind is HostEnvironment and host.variant is cat.variant("host", p.profile)
    env = host.kind("host", host.variant, p.run_id)
    assert env.variant is host.variant
    for w in p.workloads:
        assert isinstance(w.params, TOOLS[w.tool].Params), w.name
        assert w.sweep_keys == list(TOOLS[w.tool].sweeps)
        assert w.facts == TOOLS[w.tool].facts().to_json() and w.to_json()["facts"] == w.facts


def test_the_recorded_runs_plan_reads_back_and_writes_the_same_json():
    doc = json.loads(RECORDED.read_text())
    for name in doc["environment_order"]:
        recorded = doc["environments"][name]
        planned = plan.PlannedEnvironment.from_json(name, recorded)
        assert isinstance(planned.variant, planned.kind.Variant)
        assert planned.to_json() == {k: v for k, v in recorded.items()
                                     if k in ("kind", "description", "variant", "dimension", "baseline", "affects")}
    for name in doc["workload_order"]:
        recorded = doc["workloads"][name]
        w = config.WorkloadConfig.from_json(recorded)
        assert isinstance(w.params, TOOLS[w.tool].Params)
        again = w.to_json()
        # a run recorded before sweep keys were kept has none (its statistics infer them)
        assert again["sweep_keys"] == []
        # nor the tool's facts: a resumed run records its tool's as they stand now
        assert "facts" not in recorded and again["facts"] == TOOLS[w.tool].facts().to_json()
        assert {k: v for k, v in again.items() if k in recorded and k != "params"} == \
            {k: v for k, v in recorded.items() if k != "params"}
        # its parameters as recorded; one added to the tool since is written at its default, the
        # value that does what the run did (Redis' scale_clients: 1, no scaling)
        params = again["params"]
        assert {k: v for k, v in params.items() if k in recorded["params"]} == recorded["params"]
        fields = TOOLS[w.tool].Params.model_fields
        assert all(params[k] == fields[k].default for k in set(params) - set(recorded["params"]))


def test_a_garbled_variant_in_run_json_is_refused_by_its_kinds_model():
    with pytest.raises(ValueError, match="network"):
        plan.PlannedEnvironment.from_json("docker-nat", {"kind": "docker", "variant": {"network": "nowhere"}})
    with pytest.raises(KeyError):
        plan.PlannedEnvironment.from_json("x", {"kind": "no-such-kind", "variant": {}})


def test_no_module_reads_the_process_environment_for_its_settings():
    """The user's variables are read once, by the command line (bench/settings.py); the process
    environment is read elsewhere only as what is under test or handed to a child."""
    allowed = {
        "cli.py": "reads the user's variables once",
        "environments/context.py": "the variables --pass-env hands to the tools",
        "parity.py": "the probe of the execution context (the PATH and variables it runs under)",
        "doctor.py": "reports the code-path variables set in this shell",
        "environments/compose.py": "the few variables docker-compose itself needs (PATH, HOME, DOCKER_HOST)",
    }
    found = sorted(str(path.relative_to(ROOT / "bench")) for path in (ROOT / "bench").rglob("*.py")
                   if "os.environ" in path.read_text() or "getenv(" in path.read_text())
    assert set(found) <= set(allowed), set(found) - set(allowed)
    settings = (ROOT / "bench" / "settings.py").read_text()
    assert "environ" in settings and "import os" not in settings   # it is handed the mapping


def test_the_guide_and_help_list_the_same_variables():
    from bench import settings

    guide = (ROOT / "docs" / "configuration.md").read_text()
    for name, meaning in settings.VARIABLES.items():
        assert f"| `{name}` | {meaning} |" in guide, name
    # every variable bench reads from an environment mapping is one of them
    code = "".join(p.read_text() for p in (ROOT / "bench").rglob("*.py"))
    read = set(re.findall(r'environ(?:\.get\(|\[)"(BENCH_[A-Z_]+)"', code)) | set(re.findall(r'path\("(BENCH_[A-Z_]+)"', code))
    assert read == set(settings.VARIABLES), read ^ set(settings.VARIABLES)


def docker_ok() -> bool:
    from bench.environments.docker import DockerEnvironment

    return DockerEnvironment.availability(DockerEnvironment.Variant())[0]


@pytest.mark.skipif(not docker_ok(), reason="dockerd is not running")
def test_tools_that_cannot_run_under_gvisor_are_refused_before_anything_is_made(tmp_path, config_copy):
    from conftest import bench_cli

    # The cpu suite in gVisor: hpcc's cells are left out with the reason, the others planned.
    p = plan.resolve(config.load(), plan.RunOptions(suite="cpu", environments=["docker-gvisor"], out=tmp_path))
    assert set(p.left_out) == {("docker-gvisor", "hpcc")}
    assert "Open MPI finds no CPU topology" in p.left_out[("docker-gvisor", "hpcc")]
    assert not p.runs("docker-gvisor", "hpcc") and p.runs("docker-gvisor", "sysbench-cpu")
    # A suite of nothing else: one line, exit 2, nothing made (it used to fail each repetition, exit 1).
    (config_copy / "suites" / "db.yaml").write_text("repetitions: 1\nworkloads: [mariadb-oltp]\n")
    r = bench_cli("--config-dir", str(config_copy), "run", "--suite", "db", "--env", "docker-gvisor",
                  "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "under runsc, mariadbd's InnoDB fails to start" in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "out").exists()
    # and `bench list` says so
    listed = json.loads(bench_cli("list", "environments", "--json").stdout)["environments"]
    gvisor = next(e for e in listed if e["name"] == "docker-gvisor")
    assert set(gvisor["refuses"]) == {"hpcc", "mariadb"}
    assert next(e for e in listed if e["name"] == "docker-nat")["refuses"] == {}
