"""The command line as a user meets it: help, listings, and one-line errors with exit status 2."""

from __future__ import annotations


import pytest

from conftest import bench_cli


@pytest.mark.parametrize("verb", [[], ["run"], ["list"]])
def test_help_for_every_verb(verb):
    r = bench_cli(*verb, "--help")
    assert r.returncode == 0 and "usage: bench" in r.stdout


def test_list_shows_catalogue_parameters_and_availability():
    r = bench_cli("list")
    assert r.returncode == 0, r.stderr
    assert "quick" in r.stdout and "fio-randread-4k" in r.stdout
    assert "iodepth=16" in r.stdout and "size=256M" in r.stdout
    assert "host" in r.stdout and "available" in r.stdout
    lab = bench_cli("list", "--profile", "lab")
    assert "size=16G" in lab.stdout


def test_list_names_each_variant_and_what_cannot_run_on_linux():
    r = bench_cli("list")
    lines = r.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[:1] == ["docker-overlay"])
    assert "variant of docker-nat (container-storage)" in "\n".join(lines[at:at + 3])
    for platform in ("kubernetes", "windows-containers", "hyper-v"):
        line = next(line for line in lines if line.split()[:1] == [platform])
        assert "NOT AVAILABLE: not supported by bench: needs" in line, line


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
    (["run", "--reps", "-1"], "--reps must be at least 1"),
    (["run", "--reps", "1.5"], "invalid int value"),
    (["run", "--profile", "huge"], "invalid choice"),
    (["run", "--seed", "x"], "invalid int value"),
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
    (["list", "--profile", "quick", "extra"], "unrecognized arguments"),
]


@pytest.mark.parametrize("argv,message", MALFORMED_ARGS, ids=[" ".join(a) for a, _ in MALFORMED_ARGS])
def test_malformed_command_lines(tmp_path, argv, message):
    out = tmp_path / "results"
    if argv[0] == "run":
        argv = [*argv, "--out", str(out)]
    r = bench_cli(*argv)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and message in r.stderr, r.stderr
    assert not out.exists() or not any(out.iterdir())
