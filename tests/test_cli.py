"""The command line as a user meets it: help, listings, and one-line errors with exit status 2."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, bench_cli

NARROW = {"COLUMNS": "100"}


@pytest.mark.parametrize("verb", [[], ["run"], ["list"]])
def test_help_for_every_verb(verb):
    r = bench_cli(*verb, "--help")
    assert r.returncode == 0 and "usage: bench" in r.stdout


def test_version():
    r = bench_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == "bench 0.1.0", r.stdout + r.stderr


def test_list_is_one_line_per_item_within_100_columns():
    r = bench_cli("list", env=NARROW)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(map(len, lines)) <= 100, max(lines, key=len)
    assert any(line.split()[:3] == ["quick", "quick,", "3"] for line in lines)   # suite, profile, reps
    assert any(line.split()[:2] == ["fio-randread-4k", "fio"] for line in lines)
    host = next(line for line in lines if line.split()[:1] == ["host"])
    assert host.split()[1:3] == ["host", "available"], host
    assert any("…" in line for line in lines)   # the long suites and descriptions are cut, not wrapped
    assert "iodepth=16" not in r.stdout         # parameters are details: --long
    assert any(line.endswith("available here; --long says why the others are not") for line in lines)


def test_list_long_shows_parameters_variants_and_reasons_wrapped_within_100_columns():
    r = bench_cli("list", "--long", env=NARROW)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(map(len, lines)) <= 100, max(lines, key=len)
    assert "iodepth=16" in r.stdout and "size=256M" in r.stdout
    blocks = _blocks(lines)
    assert "variant of docker-nat (container-storage)" in blocks["docker-overlay"]
    for platform in ("kubernetes", "windows-containers", "hyper-v"):
        assert "NOT AVAILABLE: not supported by bench: needs" in blocks[platform], blocks[platform]
    # a wrapped paragraph's continuation lines are indented further than its first line
    kvm = r.stdout.split("\n  kvm ")[1].splitlines()[1:3]
    assert kvm[0].startswith("      NOT AVAILABLE: ") and kvm[1].startswith("        "), kvm
    lab = bench_cli("list", "workloads", "--long", "--profile", "lab")
    assert "size=16G" in lab.stdout and "environments:" not in lab.stdout


def _blocks(lines: list[str]) -> dict[str, str]:
    """--long output: each item's name -> its header and detail lines as one text."""
    blocks: dict[str, list[str]] = {}
    name = None
    for line in lines:
        if line.startswith("  ") and not line.startswith("   "):
            name = line.split()[0]
            blocks[name] = []
        if name:
            blocks[name].append(line.strip())
    return {n: " ".join(b) for n, b in blocks.items()}


def test_list_json_is_one_document_with_every_detail():
    r = bench_cli("list", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) == {"profile", "suites", "workloads", "environments"}
    fio = next(w for w in doc["workloads"] if w["name"] == "fio-randread-4k")
    assert fio["tool"] == "fio" and fio["params"]["iodepth"] == 16 and fio["description"]
    envs = {e["name"]: e for e in doc["environments"]}
    assert envs["host"]["available"] is True and envs["host"]["reason"]
    assert envs["kubernetes"]["available"] is False and "not supported by bench" in envs["kubernetes"]["reason"]
    assert envs["docker-overlay"]["baseline"] == "docker-nat"


def test_list_one_section_and_only_available_environments():
    r = bench_cli("list", "environments", "--available", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) == {"profile", "environments"}
    names = [e["name"] for e in doc["environments"]]
    assert "host" in names and "kubernetes" not in names and all(e["available"] for e in doc["environments"])
    text = bench_cli("list", "suites")
    assert text.stdout.startswith("suites:") and "workloads:" not in text.stdout and "environments:" not in text.stdout
    assert_clean_error(bench_cli("list", "suites", "--available"), "bench list environments --available")


@pytest.mark.parametrize("verb,output", [("report", "r.html"), ("export", "samples.csv")])
def test_out_is_the_results_folder_and_a_file_there_points_to_o(tmp_path, verb, output):
    """`bench report RUN --out r.html`: --out is the results folder in every verb; the file is -o."""
    assert_clean_error(bench_cli(verb, "some-run", "--out", str(tmp_path / output)),
                       "--out is the results folder", f"use -o {tmp_path / output}")


def test_an_unsupported_platform_asked_for_by_name_is_refused(tmp_path):
    out = tmp_path / "results"
    assert_clean_error(bench_cli("run", "--env", "kubernetes", "--out", str(out)),
                       "environment 'kubernetes' is not available here", "Kubernetes cluster", out=out)


def assert_clean_error(r, *fragments, out=None):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: error: "), r.stderr
    assert "Traceback" not in r.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    if out is not None:
        assert not out.exists() or not any(out.iterdir()), "something was half-written"


def test_unknown_suite(tmp_path):
    out = tmp_path / "results"
    assert_clean_error(bench_cli("run", "--suite", "qick", "--out", str(out)),
                       "unknown suite 'qick'", "did you mean 'quick'", out=out)


def test_unknown_environment(tmp_path):
    out = tmp_path / "results"
    assert_clean_error(bench_cli("run", "--env", "hots", "--out", str(out)),
                       "unknown environment 'hots'", "did you mean 'host'", out=out)


def test_malformed_suite_file(tmp_path, config_copy):
    (config_copy / "suites" / "quick.yaml").write_text("workloads: [fio-randread-4k\n")
    out = tmp_path / "results"
    assert_clean_error(bench_cli("--config-dir", str(config_copy), "run", "--out", str(out)),
                       "quick.yaml", "not valid YAML", out=out)


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert_clean_error(bench_cli("run", "--env", "host", "--out", str(blocker / "results")),
                       "cannot write results to", "--out")


def test_missing_tool_names_the_package(tmp_path):
    out = tmp_path / "results"
    # A PATH with none of the tools on it: what a fresh machine looks like before setup. Tools
    # run on the declared PATH, so the caller's reaches them only when passed on.
    r = bench_cli("run", "--env", "host", "--out", str(out), "--pass-env", "PATH", env={"PATH": str(tmp_path)})
    assert_clean_error(r, "missing on this host", "fio", "apt-get install", out=out)


def test_repetitions_must_be_positive(tmp_path):
    assert_clean_error(bench_cli("run", "--reps", "0", "--out", str(tmp_path / "r")), "--reps")


def test_bad_run_id(tmp_path):
    assert_clean_error(bench_cli("run", "--run-id", "../../etc", "--out", str(tmp_path / "r")),
                       "invalid run id")


def test_argparse_errors_are_status_2_too():
    r = bench_cli("run", "--reps", "many")
    assert r.returncode == 2 and "Traceback" not in r.stderr


# Malformed command lines: each is refused with exit status 2, one line or argparse's usage,
# never a traceback, and nothing is made.
MALFORMED_ARGS = [
    (["run", "--suite", ""], "unknown suite ''"),
    (["run", "--env", ","], "expected one or more names"),
    (["run", "--env", "host,nope"], "unknown environment 'nope'"),
    (["run", "--reps", "-1"], "argument --reps: a whole number from 1 to 1000, not '-1'"),
    (["run", "--reps", "1.5"], "a whole number from 1 to 1000, not '1.5'"),
    (["run", "--reps", "99999"], "a whole number from 1 to 1000"),
    (["run", "--target-ci", "inf"], "argument --target-ci: a number from 1e-06 to 100"),
    (["run", "--max-reps", "0"], "argument --max-reps: a whole number from 1 to 1000"),
    (["compare", "a", "b", "--threshold", "nan"], "argument --threshold: a number from 0 to 1000"),
    (["compare", "a", "b", "--threshold", "-1"], "argument --threshold: a number from 0 to 1000"),
    (["run", "--profile", "huge"], "invalid choice"),
    (["run", "--seed", "x"], "a whole number from 0 to"),
    (["run", "--seed", "-3"], "a whole number from 0 to"),
    (["run", "--resume", "no-such-run"], "not a run folder"),
    (["run", "--resume", "../x"], "invalid run id"),
    (["run", "--resume", "x", "--env", "host"], "drop --env"),
    (["run", "--resume", "x", "--suite", "quick", "--reps", "2"], "drop --suite, --reps"),
    (["cleanup", "--run-id", "../../x"], "invalid run id"),
    (["--config-dir", "/nonexistent/bench", "list"], "no such configuration folder"),
    (["reprot"], "invalid choice"),
    (["report"], "the following arguments are required: RUN"),
    (["image"], "required"),
    (["image", "bake"], "invalid choice"),
    (["list", "--profile", "quick", "extra"], "invalid choice: 'extra'"),
    (["list", "suites", "workloads"], "unrecognized arguments"),
    (["list", "--long", "--json"], "not allowed with argument --long"),
]


@pytest.mark.parametrize("argv,message", MALFORMED_ARGS, ids=[" ".join(a) for a, _ in MALFORMED_ARGS])
def test_malformed_command_lines(tmp_path, argv, message):
    out = tmp_path / "results"
    if argv[0] == "run":
        argv = [*argv, "--out", str(out)]
    r = bench_cli(*argv)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("bench: error: "), r.stderr
    assert not out.exists() or not any(out.iterdir())


def test_the_guide_and_help_give_each_exit_status_one_meaning():
    from bench.cli import EXIT_STATUS

    guide = (ROOT / "docs" / "running.md").read_text()
    shown = " ".join(bench_cli("--help").stdout.split())
    for code, meaning in EXIT_STATUS.items():
        assert f"| {code} | {meaning} |" in guide, code
        assert f"{code} {meaning}" in shown, code
