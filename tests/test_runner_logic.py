"""The runner's own logic, fast: the schedule, a failing tool, a backend fault and its one
re-provisioning, resume after an interruption, adaptive rounds. The environments are the tests'
in-process kind (tests/inprocess.py): the real runner, store, parity probe and parser, with the
measured tool's output recorded, so that a whole run takes a second or two."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import config
from bench.plan import RunOptions
from bench.plan import resolve as plan
from bench.plan import resume as plan_resume
from bench.runner import Runner
from bench.workloads import TOOLS

import inprocess


@pytest.fixture
def setup(monkeypatch, config_copy, tmp_path):
    inprocess.register(monkeypatch, config_copy, {"proc-a": {"label": "a"}, "proc-b": {"label": "b"}})
    (config_copy / "suites" / "t.yaml").write_text(
        "description: one CPU cell\nprofile: quick\nrepetitions: 3\nworkloads: [sysbench-cpu]\n")
    catalogue = config.load(config_copy)

    def run(envs=("proc-a", "proc-b"), **options):
        p = plan(catalogue, "t", environments=list(envs), out=tmp_path / "out", run_id="r", seed=7,
                 options=RunOptions(scratch=tmp_path / "scratch", **options))
        runner = Runner(p, report=lambda line: None)
        return runner, runner.execute()

    run.catalogue = catalogue
    run.out = tmp_path / "out"
    return run


def rates(store) -> list[tuple[str, int, float]]:
    return [(s.environment, s.repetition, s.value) for s in store.samples() if s.metric == "events_per_second"]


def test_repetitions_interleave_environments_and_every_sample_says_where_it_ran(setup):
    runner, store = setup()
    got = rates(store)
    assert sorted((env, rep) for env, rep, _ in got) == [(e, r) for e in ("proc-a", "proc-b") for r in (1, 2, 3)]
    # Round by round: no environment's repetition 2 before both have their repetition 1.
    assert [rep for _, rep, _ in got] == sorted(rep for _, rep, _ in got)
    assert inprocess.CALLS == {"proc-a": 4, "proc-b": 4}   # one warm-up each, discarded
    assert {s.variant["label"] for s in store.samples() if s.environment == "proc-a"} == {"a"}
    assert all(v == pytest.approx(2536.24) for _, _, v in got)   # the recorded output, parsed
    assert runner.failures == 0 and store.manifest()["status"] == "complete"
    # run.json's workloads carry their tool's facts: what the report reads of a tool, by no name
    facts = store.manifest()["workloads"]["sysbench-cpu"]["facts"]
    assert facts == TOOLS["sysbench"].facts().to_json() and facts["resource"] == "CPU"


def test_a_failing_tool_is_recorded_and_the_run_goes_on(setup):
    inprocess.SCRIPTS["proc-a"] = [1, 1, "tool", 1]   # warm-up, rep 1, rep 2 fails, rep 3
    runner, store = setup()
    failures = store.failures()
    assert [(f["environment"], f["repetition"], f["cause"]) for f in failures] == [("proc-a", 2, "tool")]
    assert sorted(rep for env, rep, _ in rates(store) if env == "proc-a") == [1, 3]
    assert runner.failures == 1 and inprocess.PROVISIONED == {"proc-a": 1, "proc-b": 1}


def test_a_failed_tool_says_its_cause_on_the_terminal_and_in_the_summary(setup, capfd):
    from bench.cli.run import print_summary

    inprocess.SCRIPTS["proc-a"] = [1, "tool"]
    said: list[str] = []
    p = plan(setup.catalogue, "t", environments=["proc-a"], out=setup.out, run_id="r", seed=7,
             options=RunOptions(scratch=setup.out.parent / "scratch"))
    store = Runner(p, report=said.append).execute()
    cause = "exit status 1: FATAL: a failure of the tool itself"   # the last line of its stderr
    assert [f["reason"] for f in store.failures()] == [cause]
    capfd.readouterr()   # the progress line says FAILED (reason), the same reason
    print_summary(store)
    assert f"proc-a · sysbench-cpu · rep 1: {cause}" in capfd.readouterr().out


def test_a_backend_fault_provisions_the_environment_anew_once(setup):
    inprocess.SCRIPTS["proc-a"] = [1, 1, "gone", 1]
    runner, store = setup()
    assert [(f["repetition"], f["cause"]) for f in store.failures()] == [(2, "backend")]
    assert inprocess.PROVISIONED["proc-a"] == 2
    assert sorted(rep for env, rep, _ in rates(store) if env == "proc-a") == [1, 3]
    assert [r["environment"] for r in store.manifest()["reprovisioned"]] == ["proc-a"]


def test_re_provisioning_waits_for_a_backend_that_comes_back(setup, monkeypatch):
    """A daemon killed and restarted a moment later: provisioning at once would fail while it is
    down; the runner says it waits, and uses it once it answers. (Down for half a second, asked
    every fifth: the seconds of a real restart prove nothing more here.)"""
    from bench import runner as runner_module

    monkeypatch.setattr(inprocess, "DOWN_SECONDS", 0.5)
    monkeypatch.setattr(runner_module, "BACKEND_POLL", 0.2)
    inprocess.SCRIPTS["proc-a"] = [1, 1, "down", 1]
    said: list[str] = []
    p = plan(setup.catalogue, "t", environments=["proc-a"], out=setup.out, run_id="r", seed=7,
             options=RunOptions(scratch=setup.out.parent / "scratch"))
    runner = Runner(p, report=said.append)
    store = runner.execute()
    assert any(line.startswith("proc-a: waiting up to 120 s for its backend to come back") for line in said), said
    assert inprocess.PROVISIONED["proc-a"] == 2 and "proc-a" not in runner.lost
    assert sorted(rep for env, rep, _ in rates(store) if env == "proc-a") == [1, 3]


def test_a_backend_that_stays_down_is_given_up_after_the_window(setup, monkeypatch):
    from bench import runner as runner_module

    monkeypatch.setattr(runner_module, "BACKEND_WINDOW", 1.0)
    monkeypatch.setattr(runner_module, "BACKEND_POLL", 0.2)
    monkeypatch.setattr(inprocess, "DOWN_SECONDS", 60.0)
    inprocess.SCRIPTS["proc-a"] = [1, "down"]
    runner, store = setup()
    assert "did not come back within 1 s" in runner.lost["proc-a"]
    assert [(f["environment"], f["repetition"], f["cause"]) for f in store.failures()] == [
        ("proc-a", rep, "backend") for rep in (1, 2, 3)]
    assert sorted(rep for env, rep, _ in rates(store) if env == "proc-b") == [1, 2, 3]
    assert store.manifest()["status"] == "complete"


def test_an_environment_removed_under_its_tool_is_a_backend_fault_though_it_answered_once(setup):
    """The race a CI run met: the tool killed with its container, and a command asked at once
    still ran there; asked again a moment later, it is gone."""
    inprocess.SCRIPTS["proc-a"] = [1, 1, "dying", 1]
    runner, store = setup()
    assert [(f["repetition"], f["cause"]) for f in store.failures()] == [(2, "backend")]
    assert inprocess.PROVISIONED["proc-a"] == 2


def test_a_second_backend_fault_gives_the_environment_up_and_the_others_finish(setup):
    inprocess.SCRIPTS["proc-a"] = [1, "gone", "gone"]
    runner, store = setup()
    assert [(f["repetition"], f["cause"]) for f in store.failures() if f["environment"] == "proc-a"][:2] == \
        [(1, "backend"), (2, "backend")]
    assert [f["repetition"] for f in store.failures()] == [1, 2, 3]   # the rest recorded at once
    assert sorted(rep for env, rep, _ in rates(store) if env == "proc-b") == [1, 2, 3]
    assert inprocess.PROVISIONED["proc-a"] == 2


def test_resume_after_an_interruption_measures_only_what_is_missing(setup):
    inprocess.SCRIPTS["proc-b"] = [1, 1, "interrupt"]
    with pytest.raises(KeyboardInterrupt):
        setup()
    first = json.loads((setup.out / "r" / "run.json").read_text())
    assert first["status"] == "interrupted"
    inprocess.SCRIPTS.clear()
    p, store = plan_resume(setup.catalogue, setup.out, "r")
    runner = Runner(p, report=lambda line: None, resume=store)
    store = runner.execute()
    pairs = [(env, rep) for env, rep, _ in rates(store)]
    assert sorted(pairs) == [(e, r) for e in ("proc-a", "proc-b") for r in (1, 2, 3)]   # none twice
    manifest = store.manifest()
    assert manifest["status"] == "complete" and len(manifest["resumed_at"]) == 1
    # Provisioned again on resume: an attempt in run.json, not a second provisioning sample.
    assert inprocess.PROVISIONED == {"proc-a": 2, "proc-b": 2}


def test_adaptive_rounds_add_repetitions_until_the_cap(setup):
    spread = [1, 1.0, 0.7, 1.3, 0.8, 1.2, 0.9, 1.1]
    inprocess.SCRIPTS.update({"proc-a": spread, "proc-b": spread})
    runner, store = setup(target_ci=0.001, max_reps=5)
    reps = {}
    for env, rep, _ in rates(store):
        reps[env] = max(reps.get(env, 0), rep)
    assert reps == {"proc-a": 5, "proc-b": 5}   # never within ±0.001 %: the cap stops them
    assert inprocess.CALLS == {"proc-a": 6, "proc-b": 6}


def test_the_test_kind_is_not_a_kind_of_bench():
    from bench.environments import KINDS

    assert "inprocess" not in KINDS and inprocess.InProcessEnvironment.catalogued is False
    assert Path(inprocess.__file__).parent.name == "tests"


def test_a_bug_in_a_kind_is_a_crash_with_a_traceback_not_a_backend_fault(setup, monkeypatch, capsys, tmp_path):
    """A programming error in a kind (an AttributeError mid-repetition) is bench's bug: the run
    stops with exit status 70 and a traceback file, everything torn down, instead of being
    recorded as the environment's backend failing and the environment provisioned anew."""
    import tempfile

    from bench import cli

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))   # where the traceback file goes
    inprocess.SCRIPTS["proc-a"] = [1, "bug"]
    status = cli.main(["--config-dir", str(setup.catalogue.root), "run", "--suite", "t", "--env", "proc-a",
                       "--out", str(setup.out), "--run-id", "r", "--scratch", str(setup.out.parent / "scratch")])
    err = capsys.readouterr().err
    assert status == 70 and "bench: internal error: AttributeError" in err, err[-2000:]
    [trace] = tmp_path.glob("bench-error-*.txt")
    assert "inprocess.py" in trace.read_text() and "AttributeError" in trace.read_text()
    run = setup.out / "r"
    failures = (run / "failures.jsonl").read_text() if (run / "failures.jsonl").exists() else ""
    assert "backend" not in failures and "reprovisioned" not in json.loads((run / "run.json").read_text())
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    assert inprocess.PROVISIONED == {"proc-a": 1}   # not provisioned anew
    assert not list((setup.out.parent / "scratch").glob("bench-r-*"))   # torn down all the same


def test_a_backend_fault_is_a_backend_error_with_the_backends_own_words(setup):
    """What the in-process kind's client raises (ConnectionError) arrives as BackendError, its
    cause kept; the failure record says the backend's words as before."""
    from bench.environments.base import BackendError

    env = inprocess.InProcessEnvironment("proc-x", {}, "r")
    env.gone = True
    with pytest.raises(BackendError) as caught:
        env.exec(["true"], timeout=5)
    assert isinstance(caught.value.__cause__, ConnectionError)
    inprocess.SCRIPTS["proc-a"] = [1, "gone"]
    runner, store = setup(envs=("proc-a",))
    assert store.failures()[0]["reason"].startswith("exit status 137, and then ConnectionError: the environment is gone")


def test_a_guest_is_booted_anew_at_the_size_a_workload_asks_and_at_its_own_for_the_next(
        monkeypatch, config_copy, tmp_path):
    """Workloads in suite order, the middle one asking for a guest of 1 vCPU: the guest is
    booted anew for it, and anew at its own size for the one after; each sample carries the size
    it ran at, run.json's `guests` says which guest each boot was for. (test_libvirt shows the
    first boot anew on a real guest under TCG.)"""
    inprocess.register(monkeypatch, config_copy, {"proc-vm": {"kind": inprocess.InProcessGuest.kind}})
    catalogue_file = config_copy / "catalogue" / "sized.yaml"
    catalogue_file.write_text("".join(
        f"cpu-{n}:\n  tool: sysbench\n  warmups: 0\n  params: {{time: 1}}\n" + (
            "  guest:\n    quick: {vcpus: 1}\n" if n == 2 else "") for n in (1, 2, 3)))
    (config_copy / "suites" / "sized.yaml").write_text(
        "description: three cells\nprofile: quick\nrepetitions: 1\nworkloads: [cpu-1, cpu-2, cpu-3]\n")
    said: list[str] = []
    p = plan(config.load(config_copy), "sized", environments=["proc-vm"], out=tmp_path / "out", run_id="r",
             seed=7, options=RunOptions(scratch=tmp_path / "scratch"))
    store = Runner(p, report=said.append).execute()
    sizes = {s.workload: s.variant.get("vcpus") for s in store.samples() if s.metric == "events_per_second"}
    assert sizes == {"cpu-1": None, "cpu-2": 1, "cpu-3": None}
    assert inprocess.PROVISIONED == {"proc-vm": 3}
    assert [line for line in said if "booting it anew" in line] == [
        "proc-vm: a guest of vcpus=1 for cpu-2: booting it anew",
        "proc-vm: a guest of its own size for cpu-3: booting it anew"]
    assert [g["for"] for g in store.manifest()["environments"]["proc-vm"]["guests"]] == ["cpu-2", "cpu-3"]
