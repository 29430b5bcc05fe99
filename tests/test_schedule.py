"""The plan of a run: which cells (environment x workload) a suite has, in what order."""

from __future__ import annotations

import pytest

from bench import config
from bench.errors import ConfigError
from bench.plan import schedule
from bench.plan import resolve as plan


def write_suite(root, text: str) -> None:
    (root / "suites" / "pairs.yaml").write_text(text)


def test_only_pairs_a_workload_with_its_environments(config_copy, tmp_path):
    with open(config_copy / "environments.yaml", "a") as f:
        f.write("\nhost-again:\n  kind: host\n  dimension: d\n  baseline: host\n")
    write_suite(config_copy, "repetitions: 2\nworkloads: [sysbench-cpu, xz-compress]\n"
                             "environments: [host, host-again]\nonly: {xz-compress: [host]}\n")
    p = plan(config.load(config_copy), "pairs", out=tmp_path / "results", seed=3)
    assert list(p.environments) == ["host", "host-again"]
    cells = {(s.environment, s.workload.name) for s in schedule(p)}
    assert cells == {("host", "sysbench-cpu"), ("host-again", "sysbench-cpu"), ("host", "xz-compress")}
    assert sum(1 for s in schedule(p) if s.repetition == 2) == 3


def test_an_environment_without_a_cell_is_not_provisioned(config_copy, tmp_path):
    with open(config_copy / "environments.yaml", "a") as f:
        f.write("\nhost-again:\n  kind: host\n")
    write_suite(config_copy, "workloads: [xz-compress]\nenvironments: [host, host-again]\nonly: {xz-compress: [host]}\n")
    p = plan(config.load(config_copy), "pairs", out=tmp_path / "results")
    assert list(p.environments) == ["host"]
    assert p.skipped_environments == {"host-again": "no workload of the suite runs there"}


def test_suite_environments_that_cannot_run_here_are_skipped_not_fatal(config_copy, tmp_path):
    write_suite(config_copy, "workloads: [xz-compress]\nenvironments: [host, kubernetes]\n")
    p = plan(config.load(config_copy), "pairs", out=tmp_path / "results")
    assert list(p.environments) == ["host"] and "Kubernetes cluster" in p.skipped_environments["kubernetes"]


@pytest.mark.parametrize("text,message", [
    ("workloads: [xz-compress]\nenvironments: [hots]\n", r"unknown environment 'hots' in .*pairs.yaml: environments"),
    ("workloads: [xz-compress]\nonly: {fio-randread-4k: [host]}\n", r"unknown workload 'fio-randread-4k' in .*pairs.yaml: only"),
    ("workloads: [xz-compress]\nonly: {xz-compress: [hots]}\n", r"unknown environment 'hots' in .*pairs.yaml: only.xz-compress"),
])
def test_bad_pairs_are_refused(config_copy, text, message):
    write_suite(config_copy, text)
    with pytest.raises(ConfigError, match=message):
        config.load(config_copy)


def test_variants_off_by_default_run_only_when_named(config_copy, tmp_path):
    with open(config_copy / "environments.yaml", "a") as f:
        f.write("\nhost-again:\n  kind: host\n  dimension: d\n  baseline: host\n  by_default: false\n")
    write_suite(config_copy, "workloads: [xz-compress]\n")
    catalogue = config.load(config_copy)
    assert "host-again" not in plan(catalogue, "pairs", out=tmp_path / "a").environments
    named = plan(catalogue, "pairs", environments=["host", "host-again"], out=tmp_path / "b")
    assert list(named.environments) == ["host", "host-again"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowed one
def test_a_signal_lost_where_python_ignores_exceptions_still_stops_the_run():
    """SIGTERM handled inside a finalizer (as inside a fork hook of subprocess) raises where
    Python only prints "Exception ignored"; the runner's check between steps still stops."""
    import os
    import signal
    import time

    from bench import interrupts

    class Finalizer:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the handler runs here and its KeyboardInterrupt is swallowed

    with interrupts.as_interrupt():
        Finalizer()
        with pytest.raises(KeyboardInterrupt, match="signal 15"):
            interrupts.raise_if_interrupted()
    interrupts.received.clear()


def test_a_signal_inside_a_deferred_section_waits_for_its_end():
    """What a resource's creation does between the daemon making it and bench holding its
    handle is not cut by a signal: the section ends, then the interrupt is raised."""
    import os
    import signal

    from bench import interrupts

    registered = []
    with interrupts.as_interrupt():
        with pytest.raises(KeyboardInterrupt, match="signal 15"):
            with interrupts.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                registered.append("handle")  # still runs: the signal waits
        assert registered == ["handle"]
        with pytest.raises(KeyboardInterrupt):  # and the run's own check still sees it
            interrupts.raise_if_interrupted()
    interrupts.received.clear()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
