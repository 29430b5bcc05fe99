"""The report's variants section: each dimension's environments beside their own baseline.

From a real run: the host twice, the second copy declared a variant of the first (a dimension
and a baseline in a copy of environments.yaml), so that both sides are real measurements.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import bench
from bench import stats
from bench.report import build
from bench.report.variants import dimensions

from conftest import bench_cli


def test_dimensions_group_variants_under_their_baseline():
    manifests = [{"environments": {
        "docker-nat": {"kind": "docker"},
        "docker-vfs": {"dimension": "storage-driver", "baseline": "docker-nat"},
        "docker-seccomp-off": {"dimension": "security", "baseline": "docker-nat"},
        "docker-caps-dropped": {"dimension": "security", "baseline": "docker-nat"},
        "kvm-e1000": {"dimension": "vm-devices", "baseline": "kvm"},   # its baseline did not run
    }}]
    groups = dimensions(manifests, {"docker-nat", "docker-vfs", "docker-seccomp-off", "docker-caps-dropped", "kvm-e1000"})
    assert groups == {"storage-driver": {"baseline": "docker-nat", "variants": ["docker-vfs"], "affects": {"docker-vfs": []}},
                      "security": {"baseline": "docker-nat", "variants": ["docker-seccomp-off", "docker-caps-dropped"],
                                   "affects": {"docker-seccomp-off": [], "docker-caps-dropped": []}}}


@pytest.fixture(scope="module")
def variant_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("variants")
    config = root / "workloads"
    shutil.copytree(Path(__file__).resolve().parent.parent / "workloads", config)
    with open(config / "environments.yaml", "a") as f:
        f.write("\nhost-again:\n  kind: host\n  description: the host once more, as a variant of itself\n"
                "  dimension: test-dimension\n  baseline: host\n  affects: [sysbench]\n")
    (config / "catalogue" / "short.yaml").write_text(
        "sysbench-short:\n  tool: sysbench\n  warmups: 0\n  params: {cpu_max_prime: 2000, threads: 0, time: 1}\n")
    (config / "suites" / "tiny.yaml").write_text(
        "description: variants test\nprofile: quick\nrepetitions: 3\nworkloads: [sysbench-short]\n")
    out, scratch = root / "results", root / "scratch"
    scratch.mkdir()
    r = bench_cli("--config-dir", str(config), "run", "--suite", "tiny", "--env", "host,host-again",
                  "--out", str(out), "--run-id", "variants", "--scratch", str(scratch))
    assert r.returncode == 0, r.stderr[-3000:]
    return out / "variants"


@pytest.mark.integration
def test_run_json_records_the_dimension(variant_run):
    envs = json.loads((variant_run / "run.json").read_text())["environments"]
    assert envs["host-again"]["dimension"] == "test-dimension" and envs["host-again"]["baseline"] == "host"
    assert envs["host-again"]["affects"] == ["sysbench"]
    assert "dimension" not in envs["host"]


@pytest.mark.integration
def test_report_compares_the_variant_with_its_baseline(variant_run):
    context = build([variant_run])
    [group] = context["variants"]
    assert group["dimension"] == "test-dimension" and group["baseline"] == "host"
    [row] = group["rows"]
    df = bench.load(variant_run)
    events = df[df.metric == "events_per_second"]
    mine = events.loc[events.environment == "host-again", "value"].to_numpy(float)
    base = events.loc[events.environment == "host", "value"].to_numpy(float)
    assert row["variant"] == "host-again" and row["metric"] == "events_per_second" and row["n"] == 3
    assert row["ratio"] == pytest.approx(mine.mean() / base.mean())
    assert (row["ratio_low"], row["ratio_high"]) == pytest.approx(stats.log_ratio(mine, base)[1:])
    html = (variant_run / "report.html").read_text()
    assert "Variants: each choice against its default" in html and 'id="dim-test-dimension"' in html


@pytest.mark.integration
def test_a_variant_is_judged_only_on_the_tools_it_affects(variant_run, tmp_path):
    """The same run, its variant declared to affect fio only: sysbench is named, not judged."""
    copy = tmp_path / "variants"
    shutil.copytree(variant_run, copy)
    manifest = json.loads((copy / "run.json").read_text())
    manifest["environments"]["host-again"]["affects"] = ["fio"]
    (copy / "run.json").write_text(json.dumps(manifest))
    [group] = build([copy])["variants"]
    assert group["rows"] == [] and group["untouched"] == ["sysbench-short"]
