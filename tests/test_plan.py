"""The plan is resolved once, typed, and handed down as it is: what a run records of it is what
it recorded before the plan was typed (the main job's recorded run.json)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
from pathlib import Path

import pytest

from bench import config, limits, plan
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
    p = plan.resolve(cat, "quick", environments=["host"], out=tmp_path)
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


def as_planned(doc: dict) -> dict:
    """run.json's plan keys as the plan writes them: without what the run saw since (each
    environment's metadata, the client's) and with the parameters a tool added since at their
    defaults (test above)."""
    from bench.model import PLAN_KEYS

    planned = {k: doc[k] for k in PLAN_KEYS if k in doc}
    planned["environments"] = {n: {k: v for k, v in e.items()
                                   if k in ("kind", "description", "variant", "dimension", "baseline", "affects")}
                               for n, e in doc["environments"].items()}
    planned["client"] = {k: v for k, v in doc["client"].items() if k != "metadata"}
    return planned


@pytest.mark.parametrize("recorded", sorted((ROOT / "reports").glob("*/run.json")), ids=lambda p: p.parent.name)
def test_a_recorded_run_json_reads_back_as_a_plan_that_writes_its_keys(recorded):
    doc = json.loads(recorded.read_text())
    p = plan.Plan.from_manifest(doc)
    again = p.to_manifest()
    expected = as_planned(doc)
    assert set(again) == set(expected)
    for name in doc["workload_order"]:   # as recorded; what a tool added since at its default (test above)
        recorded, written = doc["workloads"][name], again["workloads"][name]
        assert written["params"].items() >= recorded["params"].items()
        again["workloads"][name] = {k: recorded[k] if k == "params" else v for k, v in written.items() if k in recorded}
    assert again == expected
    once = p.to_manifest()
    assert plan.Plan.from_manifest(once).to_manifest() == once   # and round and round


def test_a_resolved_plan_writes_run_jsons_keys_and_reads_back_the_same(tmp_path):
    from bench.environments.context import ExecutionContext
    from bench.model import PLAN_KEYS

    options = plan.RunOptions(scratch=tmp_path, target_ci=5.0, max_reps=8, allow_mismatch=True,
                              context=ExecutionContext((("LANG", "C"),)))
    p = plan.resolve(config.load(), "quick", environments=["host"], repetitions=2, out=tmp_path, seed=11,
                     options=options)
    doc = p.to_manifest()
    assert tuple(sorted(doc)) == tuple(sorted(PLAN_KEYS))
    assert doc["pass_env"] == {"LANG": "C"} and doc["scratch"] == str(tmp_path) and doc["order_seed"] == 11
    json.dumps(doc)   # JSON as it is
    # the cells a kind refuses are said before the run, not kept: the rest comes back whole
    assert plan.Plan.from_manifest(json.loads(json.dumps(doc)), tmp_path) == dataclasses.replace(p, left_out={})


def test_run_json_with_a_key_of_the_wrong_type_names_it():
    doc = json.loads(RECORDED.read_text())
    with pytest.raises(ValueError, match="^order_seed, allow_tcg$"):
        plan.Plan.from_manifest({**doc, "order_seed": True, "allow_tcg": "yes"})
    with pytest.raises(ValueError, match="^suite$"):
        plan.Plan.from_manifest({k: v for k, v in doc.items() if k != "suite"})


FLAGS = [("run", limits.REPETITIONS), ("run", limits.MAX_REPS), ("run", limits.TARGET_CI), ("run", limits.SEED),
         ("compare", limits.THRESHOLD)]


@pytest.mark.parametrize("verb,limit", FLAGS, ids=[limit.flag for _, limit in FLAGS])
def test_each_numeric_flags_argparse_type_is_made_from_its_limit(verb, limit):
    from bench.cli import build_parser

    verbs = build_parser()._subparsers._group_actions[0].choices
    action = next(a for a in verbs[verb]._actions if limit.flag in a.option_strings)
    for value in (limit.low, limit.high, limit.low - 1, limit.high + 1, limit.low + 0.5, limit.high - 0.5,
                  (limit.low + limit.high) // 2, float("nan"), float("inf")):
        text = str(int(value)) if math.isfinite(value) and float(value).is_integer() else str(value)
        try:
            taken = action.type(text) is not None
        except argparse.ArgumentTypeError as e:
            assert str(e) == f"{limit}, not {text!r}"
            taken = False
        assert taken == limit.holds(value), (limit.flag, text)


def test_resolve_refuses_what_the_command_line_refuses_and_takes_what_it_takes(tmp_path, capsys):
    """--target-ci 100 was taken by argparse and refused by resolve; 0.5 was refused by neither."""
    from bench.cli import build_parser
    from bench.errors import BenchError

    cat = config.load()
    cases = [("--reps", "repetitions", {}, v) for v in (0, 1, 1000, 1001)] + \
            [("--target-ci", "target_ci", {}, v) for v in (0, 1e-6, 99.9, 100)] + \
            [("--max-reps", "max_reps", {"target_ci": 5.0}, v) for v in (0, 3, 1000, 1001)] + \
            [("--seed", "seed", {}, v) for v in (-1, 0, 2**63 - 1, 2**63)]
    for i, (flag, key, given, value) in enumerate(cases):
        argv = ["run", flag, str(value)] + [a for k, v in given.items() for a in (f"--{k.replace('_', '-')}", str(v))]
        try:
            build_parser().parse_args(argv)
            by_argparse = True
        except SystemExit:
            by_argparse = False
        settings = {**given, key: value}
        options = plan.RunOptions(**{k: v for k, v in settings.items() if k in ("target_ci", "max_reps")})
        chosen = {k: v for k, v in settings.items() if k in ("repetitions", "seed")}
        try:
            plan.resolve(cat, "quick", environments=["host"], out=tmp_path / str(i), options=options, **chosen)
            by_resolve = True
        except BenchError as e:
            assert str(e).startswith(flag), e
            by_resolve = False
        assert by_argparse == by_resolve, (flag, value)
    assert "bench: error: argument --target-ci: a number above 0 and below 100, not '100'" in capsys.readouterr().err


def test_a_garbled_variant_in_run_json_is_refused_by_its_kinds_model():
    with pytest.raises(ValueError, match="network"):
        plan.PlannedEnvironment.from_json("docker-nat", {"kind": "docker", "variant": {"network": "nowhere"}})
    with pytest.raises(KeyError):
        plan.PlannedEnvironment.from_json("x", {"kind": "no-such-kind", "variant": {}})


def test_no_module_reads_the_process_environment_for_its_settings():
    """The user's variables are read once, by the command line (bench/settings.py); the process
    environment is read elsewhere only as what is under test or handed to a child."""
    allowed = {
        "cli/__init__.py": "reads the user's variables once",
        "cli/run.py": "checks that the variables --pass-env names are set in this shell",
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


@pytest.mark.integration
@pytest.mark.skipif(not docker_ok(), reason="dockerd is not running")
def test_tools_that_cannot_run_under_gvisor_are_refused_before_anything_is_made(tmp_path, config_copy):
    from conftest import bench_cli

    # The cpu suite in gVisor: hpcc's cells are left out with the reason, the others planned.
    p = plan.resolve(config.load(), "cpu", environments=["docker-gvisor"], out=tmp_path)
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


def test_an_interrupted_run_recorded_before_resumes_with_its_own_plan(tmp_path):
    """plan.resume of a run folder an earlier bench wrote: its plan, options and seed as recorded
    (here the main job's run, cut to its host cells: the other kinds need their daemons)."""
    doc = json.loads(RECORDED.read_text())
    doc.update(status="interrupted", environment_order=["host"], pid=None)
    (tmp_path / doc["run_id"]).mkdir()
    (tmp_path / doc["run_id"] / "run.json").write_text(json.dumps(doc))
    p, store = plan.resume(config.load(), tmp_path, doc["run_id"], retry_failed=True)
    assert store.path == tmp_path / doc["run_id"] and p.out == tmp_path and p.retry_failed
    assert (p.run_id, p.suite, p.seed, p.repetitions) == (doc["run_id"], doc["suite"], doc["order_seed"],
                                                          doc["repetitions"])
    assert [w.name for w in p.workloads] == doc["workload_order"] and list(p.environments) == ["host"]
    assert p.options == plan.RunOptions(scratch=Path(doc["scratch"]), allow_tcg=doc["allow_tcg"],
                                        target_ci=doc["target_ci"], max_reps=doc["max_reps"],
                                        allow_mismatch=doc["allow_mismatch"])
    written = p.to_manifest()
    assert {k: written[k] for k in ("only", "skipped_environments", "client", "pass_env")} == \
        {k: doc[k] for k in ("only", "skipped_environments", "client", "pass_env")}
