"""Adaptive repetitions: --target-ci PCT --max-reps N."""

from __future__ import annotations

import json
import random
import re

import pytest
import yaml

import bench
from bench import adaptive
from bench.model import Sample

from conftest import bench_cli


def sample(env: str, workload: str, rep: int, value: float, metric: str = "m") -> Sample:
    return Sample("r", env, "host", workload, "t", metric, "u", value, "higher", rep)


def test_half_width_is_the_t_interval_in_percent_of_the_mean():
    # mean 10, sd 1, n 4: t(0.975, 3) = 3.182446 -> half-width 1.591 = 15.91 % of the mean
    values = [10 - 3 ** 0.5 / 2, 10 + 3 ** 0.5 / 2, 10 - 3 ** 0.5 / 2, 10 + 3 ** 0.5 / 2]  # sd = 1
    assert adaptive.relative_half_width(values) == pytest.approx(3.182446 * 1 / 2 / 10 * 100, rel=1e-5)
    assert adaptive.relative_half_width([5.0]) == float("inf")


def test_only_the_headline_of_each_repetition_counts():
    samples = [sample("host", "w", 1, 100), sample("host", "w", 1, 1, "other"),
               sample("host", "w", 2, 102), sample("host", "w", 2, 900, "other")]
    assert adaptive.headline_values(samples) == {("host", "w"): [100, 102]}


def test_cells_stop_at_the_target_or_the_cap_and_failed_cells_get_no_more():
    samples = [sample("host", "tight", r, v) for r, v in ((1, 100), (2, 100.1), (3, 99.9))]
    samples += [sample("host", "loose", r, v) for r, v in ((1, 50), (2, 150), (3, 100))]
    samples += [sample("docker", "loose", r, v) for r, v in ((1, 50), (2, 150), (3, 100))]
    reps = {("host", "tight"): 3, ("host", "loose"): 3, ("docker", "loose"): 5, ("docker", "broken"): 3}
    short = adaptive.cells_short_of_target(samples, reps, target_pct=5, max_reps=5)
    assert short == {("host", "loose")}  # tight is within 5 %, docker reached the cap, broken has no values


def test_a_round_keeps_suite_order_and_shuffles_environments():
    short = {("a", "w1"), ("b", "w1"), ("c", "w1"), ("a", "w2")}
    order = adaptive.next_round(short, ["w1", "w2"], ["a", "b", "c"], random.Random(1))
    assert [w for _, w in order] == ["w1", "w1", "w1", "w2"]
    assert sorted(e for e, w in order if w == "w1") == ["a", "b", "c"]
    orders = {tuple(adaptive.next_round(short, ["w1", "w2"], ["a", "b", "c"], random.Random(s))) for s in range(20)}
    assert len(orders) > 1  # the shuffle is real


def tiny_suite(config, repetitions: int) -> None:
    """Suite `t`: one 1-second sysbench cell, no warm-up."""
    (config / "suites" / "t.yaml").write_text(
        f"profile: quick\nrepetitions: {repetitions}\nworkloads: [sysbench-cpu]\n")
    # The entry is changed in place: other suites of the copy name the file's other workloads.
    catalogue = config / "catalogue" / "sysbench.yaml"
    entries = yaml.safe_load(catalogue.read_text())
    entries["sysbench-cpu"] = {"tool": "sysbench", "warmups": 0, "params": {"time": 1, "cpu_max_prime": 2000}}
    catalogue.write_text(yaml.safe_dump(entries))


@pytest.mark.integration
def test_run_adds_rounds_until_the_cap(tmp_path, config_copy):
    """A target no real measurement meets (0.001 %) runs every cell to the cap, in rounds."""
    tiny_suite(config_copy, repetitions=2)
    r = bench_cli("run", "--suite", "t", "--env", "host", "--target-ci", "0.001", "--max-reps", "4",
                  "--out", str(tmp_path), "--run-id", "adaptive", env={"BENCH_CONFIG_DIR": str(config_copy)})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr.count("not yet within ±0.001 %") == 2
    assert re.search(r"\[4/4\] host · sysbench-cpu · rep 4", r.stderr)
    df = bench.load(tmp_path / "adaptive")
    assert sorted(df[df.metric == "events_per_second"].repetition) == [1, 2, 3, 4]
    manifest = json.loads((tmp_path / "adaptive" / "run.json").read_text())
    assert manifest["target_ci"] == 0.001 and manifest["max_reps"] == 4 and manifest["repetitions_done"] == 4


@pytest.mark.integration
def test_a_loose_target_adds_nothing(tmp_path, config_copy):
    # 4 repetitions: the t quantile is 3.18 (12.7 with 2), so even a CoV of 50 % on a loaded
    # machine stays inside ±99.9 %.
    tiny_suite(config_copy, repetitions=4)
    r = bench_cli("run", "--suite", "t", "--env", "host", "--target-ci", "99.9", "--out", str(tmp_path),
                  "--run-id", "loose", env={"BENCH_CONFIG_DIR": str(config_copy)})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "not yet within" not in r.stderr
    assert sorted(bench.load(tmp_path / "loose").repetition.unique()) == [1, 2, 3, 4]


@pytest.mark.parametrize("args, message", [
    (["--max-reps", "5"], "give --target-ci"),
    (["--target-ci", "0"], "a number above 0 and below 100"),
    (["--target-ci", "nan"], "a number above 0 and below 100"),
    (["--reps", "0"], "a whole number from 1 to 1000"),
    (["--target-ci", "5", "--max-reps", "1"], "below the 3 repetitions"),
])
def test_bad_adaptive_options_are_one_line_errors(tmp_path, args, message):
    r = bench_cli("run", "--suite", "quick", "--env", "host", "--out", str(tmp_path), *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
