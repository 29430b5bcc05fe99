"""Bad input: every malformed data file, workload parameter and run folder gets a one-line answer
(exit status 2, a short message naming the file and the fix), never a traceback, a hang, a giant
message or a wrong result. The command line is run as a user would run it, in a child process.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import yaml

import bench
from bench import config
from bench.errors import BenchError, ConfigError
from bench.store import RunStore
from bench.model import Sample

from conftest import bench_cli


def one_line_error(r, *fragments, limit: int = 700):
    """Exit 2, one line on stderr that starts `bench: error: `, short, with each fragment in it."""
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("bench: error: "), r.stderr[-2000:]
    assert len(lines[0]) <= limit, f"{len(lines[0])} characters: {lines[0][:300]}"
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# -- data files --------------------------------------------------------------------------------

# 10 x 10^8 values from 700 bytes: a billion laughs in a fio parameter.
BOMB = ("fio-bomb:\n  tool: fio\n  params:\n    rw: read\n    bs: 4k\n    x0: &x0 [y, y, y, y, y, y, y, y, y, y]\n"
        + "".join(f"    x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]\n" for i in range(1, 9)))

DATA_FILES = {
    "latin-1 suite": ("suites/bad.yaml", "description: caf\xe9\nworkloads: [sysbench-cpu]\n".encode("latin-1"),
                      ["suites/bad.yaml", "not UTF-8 text (byte 0xe9 at offset 16)", "save it as UTF-8"]),
    "UTF-16 catalogue": ("catalogue/extra.yaml", "x:\n  tool: fio\n".encode("utf-16"),
                         ["catalogue/extra.yaml", "UTF-16 text: save it as UTF-8"]),
    "alias bomb in a fio parameter": ("catalogue/extra.yaml", BOMB.encode(),
                                      ["catalogue/extra.yaml", "expands to more than 100,000 values"]),
    "a file of 2 MB": ("suites/big.yaml", b"# " + b"x" * (2 << 20) + b"\n", ["suites/big.yaml", "larger than 1024 KB"]),
    "nested 10,000 deep": ("suites/deep.yaml", b"[" * 10_000 + b"]" * 10_000, ["suites/deep.yaml"]),
    "a suite that is a list": ("suites/list.yaml", b"- sysbench-cpu\n", ["suites/list.yaml", "top level"]),
    "a folder in a file's place": ("suites/dir.yaml", None, ["suites/dir.yaml", "is a folder"]),
    "a long bad name": ("suites/name.yaml", ("workloads: [" + "x" * 5000 + "]\n").encode(),
                        ["unknown workload 'xxxx", "…"]),
}


@pytest.mark.parametrize("case", list(DATA_FILES), ids=list(DATA_FILES))
@pytest.mark.parametrize("verb", [["list"], ["run", "--suite", "quick", "--env", "host"], ["report", "x"]])
def test_a_bad_data_file_is_one_line_in_every_verb(config_copy, tmp_path, case, verb):
    name, content, fragments = DATA_FILES[case]
    target = config_copy / name
    if content is None:
        target.mkdir()
    else:
        target.write_bytes(content)
    args = [*verb, "--out", str(tmp_path / "results")] if verb[0] != "list" else verb
    started = time.monotonic()
    r = bench_cli("--config-dir", str(config_copy), *args, timeout=60)
    assert time.monotonic() - started < 30, "it must not take long to refuse a file"
    one_line_error(r, *fragments)
    assert not (tmp_path / "results").exists(), "nothing made"


# -- workload parameters -----------------------------------------------------------------------

BAD_PARAMS = [
    ("sysbench-cpu", {"time": -5}, "greater than or equal to 1"),
    ("sysbench-cpu", {"time": 0}, "greater than or equal to 1"),
    ("sysbench-cpu", {"time": 10**12}, "less than or equal to 86400"),
    ("sysbench-cpu", {"time": True}, "valid integer"),
    ("sysbench-cpu", {"time": "10"}, "valid integer"),
    ("sysbench-cpu", {"threads": -1}, "greater than or equal to 0"),
    ("fio-randread-4k", {"size": "-1M"}, "a size in fio's syntax"),
    ("fio-randread-4k", {"bs": "4k;touch /tmp/x"}, "a size in fio's syntax"),
    ("fio-randread-4k", {"bs": "4k:8k"}, "a size in fio's syntax"),
    ("fio-randread-4k", {"bs": "1"}, "a block size from 512 to 64M"),
    ("fio-randread-4k", {"size": "512"}, "a file size from 1M to 64T"),
    ("fio-randread-4k", {"size": "1M", "bs": "2M"}, "larger than the file"),
    ("fio-randread-4k", {"runtime": -10}, "greater than or equal to 1"),
    ("fio-randread-4k", {"ioengine": "splice"}, "'libaio'"),
    ("fio-randread-4k", {"ioengine": "net"}, "'libaio'"),
    ("fio-randread-4k", {"iodepth": 0}, "greater than or equal to 1"),
    ("fio-randread-4k", {"numjobs": 100000}, "less than or equal to 256"),
    ("fio-randread-4k", {"filename": "/etc/passwd"}, "Extra inputs are not permitted"),
    ("fio-randread-4k", {"directory": "/"}, "Extra inputs are not permitted"),
    ("hpcc", {"n": 10**9}, "less than or equal to 1000000"),
    ("xz-compress", {"corpus_mib": 0}, "greater than or equal to 1"),
    ("netperf-tcp-rr", {"length": 0}, "greater than or equal to 1"),
    ("redis", {"clients": [0]}, "greater than or equal to 1"),
    ("redis", {"requests": 10**12}, "less than or equal to 1000000000"),
    ("mariadb-oltp", {"time": 0}, "greater than or equal to 1"),
    ("mariadb-oltp", {"warmup": -1}, "greater than or equal to 0"),
]


@pytest.mark.parametrize("workload,params,message", BAD_PARAMS,
                         ids=[f"{w} {json.dumps(p)}" for w, p, _ in BAD_PARAMS])
def test_a_bad_parameter_is_refused_when_the_catalogue_is_read(config_copy, workload, params, message):
    path = next(p for p in (config_copy / "catalogue").glob("*.yaml") if workload in yaml.safe_load(p.read_text()))
    entries = yaml.safe_load(path.read_text())
    for profile in ("quick", "lab"):   # a profile's own value would override the entry's
        entries[workload].setdefault("profiles", {}).setdefault(profile, {}).update(params)
    path.write_text(yaml.safe_dump(entries))
    with pytest.raises(ConfigError) as e:
        config.load(config_copy)
    text = str(e.value)
    assert message in text and str(path) in text and workload in text and "\n" not in text, text
    assert len(text) < 400, text


def test_a_bad_parameter_on_the_command_line_makes_nothing(config_copy, tmp_path):
    path = config_copy / "catalogue" / "sysbench.yaml"
    entries = yaml.safe_load(path.read_text())
    entries["sysbench-cpu"]["profiles"]["quick"]["time"] = 0
    path.write_text(yaml.safe_dump(entries))
    r = bench_cli("--config-dir", str(config_copy), "run", "--suite", "quick", "--env", "host",
                  "--out", str(tmp_path / "results"), timeout=60)
    one_line_error(r, "sysbench-cpu.params", "time", "greater than or equal to 1")
    assert not (tmp_path / "results").exists()


def test_a_fio_file_larger_than_the_scratch_folder_is_refused_before_anything_runs(config_copy, tmp_path):
    path = config_copy / "catalogue" / "fio.yaml"
    entries = yaml.safe_load(path.read_text())
    entries["fio-randread-4k"]["profiles"]["quick"]["size"] = "60T"
    path.write_text(yaml.safe_dump(entries))
    r = bench_cli("--config-dir", str(config_copy), "run", "--suite", "io", "--profile", "quick", "--env", "host",
                  "--out", str(tmp_path / "results"), "--scratch", str(tmp_path), timeout=60)
    one_line_error(r, "fio-randread-4k lays out a 61440.0 GiB file in --scratch", "free: free some space")
    assert not (tmp_path / "results").exists()


# -- run folders -------------------------------------------------------------------------------

def good_run(root: Path, run_id: str = "r1") -> Path:
    store = RunStore.create(root, run_id)
    store.write_manifest({"run_id": run_id, "status": "complete"})
    store.append_samples([Sample(run_id, env, "host" if env == "host" else "docker", "sysbench-cpu", "sysbench",
                                 "events_per_second", "1/s", value, "higher", rep)
                          for env in ("host", "docker-nat") for rep, value in ((1, 100.0), (2, 101.0), (3, 99.0))])
    return store.path


def break_samples_not_objects(run):
    with open(run / "samples.jsonl", "a") as f:
        f.write('[1, 2]\n"text"\n42\nnull\n{"run_id": 3}\n')


def break_samples_bytes(run):
    with open(run / "samples.jsonl", "ab") as f:
        f.write(b'{"run_id": "\xff\xfe"}\n\x00\x01\x02\n')


def break_samples_long_line(run):
    with open(run / "samples.jsonl", "a") as f:
        f.write('{"x": "' + "y" * (3 << 20) + '"}\n')


def break_samples_negative_latency(run):
    # A latency below zero (a clock that stepped back, a hand-edited file): no metric can have it.
    line = json.loads((run / "samples.jsonl").read_text().splitlines()[0])
    line.update(metric="latency_mean", unit="us", better="lower", value=-3057.0, batch="negative", batch_size=1)
    with open(run / "samples.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")


WARNED = {  # a run folder with unreadable records: each verb reads the rest and says what it skipped
    "a negative latency in samples.jsonl": (break_samples_negative_latency,
                                            "1 record(s) with a value no measurement can have (first: "
                                            "latency_mean = -3057.0 us)"),
    "samples.jsonl lines that are not objects": (break_samples_not_objects, "skipped 5 unreadable record(s)"),
    "non-UTF-8 bytes in samples.jsonl": (break_samples_bytes, "skipped 2 unreadable record(s)"),
    "a 3 MB line in samples.jsonl": (break_samples_long_line, "longer than 1 MB"),
    "failures.jsonl holding a list": (lambda run: (run / "failures.jsonl").write_text('[{"a": 1}]\n'),
                                      "skipped 1 unreadable record(s)"),
    "failures.jsonl without its fields": (lambda run: (run / "failures.jsonl").write_text('{"reason": 7}\n'),
                                          "without the fields of a failure"),
}


def taking_turns(cases, verbs) -> dict[str, list]:
    """The verbs each damaged run folder goes through. Every verb reads a run folder through the
    one loader (store.py, columnar.py), which meets each damage the same way whichever verb asked,
    and every verb says what the loader said the same way (main's one line, bench's warnings): so
    the first damage goes through every verb and each other through one, the verbs taking turns,
    rather than every damage through every verb (a command line is 2 s of imports here)."""
    return {case: list(verbs) if i == 0 else [verbs[i % len(verbs)]] for i, case in enumerate(cases)}


def reading(run: Path, verb: str, out: Path) -> list[str]:
    return {"report": ["report", str(run), "-o", str(out / "r.html")],
            "export": ["export", str(run), "-o", str(out / "x.csv")],
            "compare": ["compare", str(run), str(run)],
            "resume": ["run", "--resume", run.name, "--out", str(run.parent)]}[verb]


# failures.jsonl is read by the report alone (export and compare read samples only).
WARNED_VERBS = {**taking_turns([c for c in WARNED if "samples" in c], ["report", "export", "compare"]),
                **{c: ["report"] for c in WARNED if "samples" not in c}}


@pytest.mark.parametrize("case", list(WARNED), ids=list(WARNED))
def test_unreadable_records_are_skipped_and_counted(tmp_path, case):
    run = good_run(tmp_path)
    damage, warning = WARNED[case]
    damage(run)
    if "samples" in case:
        with pytest.warns(UserWarning, match=warning.replace("(", r"\(").replace(")", r"\)")):
            df = bench.load(run)
        assert len(df) == 6 and set(df.environment) == {"host", "docker-nat"}
    for verb in WARNED_VERBS[case]:
        r = bench_cli(*reading(run, verb, tmp_path), timeout=300)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (verb, r.stderr[-2000:])
        assert f"bench: warning: {run}" in r.stderr and warning in r.stderr, (verb, r.stderr[-2000:])
        if verb == "report":   # the report's notes say what was skipped, as the terminal does
            assert warning in (tmp_path / "r.html").read_text()


def refused_manifest(text: str):
    return lambda run: (run / "run.json").write_text(text)


def samples_a_folder(run):
    (run / "samples.jsonl").unlink()
    (run / "samples.jsonl").mkdir()


def samples_a_device(run):
    (run / "samples.jsonl").unlink()
    os.symlink("/dev/zero", run / "samples.jsonl")


REFUSED = {  # a run folder no verb can read: one line naming the file
    "run.json that is []": (refused_manifest("[]"), "not a run's manifest (a JSON list"),
    "run.json of format '1' (a string)": (refused_manifest('{"format_version": "1", "status": "complete"}'),
                                          "format_version must be a whole number from 1, not '1'"),
    "run.json of format true": (refused_manifest('{"format_version": true}'), "format_version must be a whole number"),
    "run.json not UTF-8": (lambda run: (run / "run.json").write_bytes(b'{"a": "\xff"}'), "run.json: unreadable"),
    "run.json not JSON": (refused_manifest("{"), "run.json: unreadable"),
    "samples.jsonl a folder": (samples_a_folder, "samples.jsonl: not a regular file"),
    "samples.jsonl a link to /dev/zero": (samples_a_device, "samples.jsonl: not a regular file"),
}


REFUSED_VERBS = taking_turns(list(REFUSED), ["report", "export", "compare", "resume"])


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_an_unreadable_run_folder_is_one_line_in_every_verb(tmp_path, case):
    run = good_run(tmp_path)
    damage, message = REFUSED[case]
    damage(run)
    for verb in REFUSED_VERBS[case]:
        said = one_line_error(bench_cli(*reading(run, verb, tmp_path), timeout=120))
        # resume reads run.json first: a complete run (its samples damaged) has nothing to resume
        assert message in said or verb == "resume" and "nothing to resume" in said, (verb, said)
    with pytest.raises(BenchError, match=message.replace("(", r"\(").replace("[", r"\[")):
        bench.load(run)


@pytest.mark.parametrize("key", ["workloads", "workload_order", "environment_order", "suite", "order_seed"])
def test_resume_of_a_run_json_without_a_key_is_one_line(tmp_path, key):
    run = good_run(tmp_path)
    manifest = json.loads((run / "run.json").read_text())
    manifest.update(status="failed", suite="quick", profile="quick", repetitions=3, order_seed=1,
                    workloads={}, workload_order=["sysbench-cpu"], environments={}, environment_order=["host"])
    del manifest[key]
    (run / "run.json").write_text(json.dumps(manifest))
    one_line_error(bench_cli("run", "--resume", run.name, "--out", str(tmp_path), timeout=120),
                   f"cannot resume {run.name}: its run.json lacks or garbles", key)


def test_export_to_an_unwritable_place_is_one_line(tmp_path):
    run = good_run(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")
    one_line_error(bench_cli("export", str(run), "-o", str(blocker / "x.csv"), timeout=120), str(blocker))


def test_output_onto_a_fifo_a_link_and_a_folder(tmp_path):
    """-o writes through a FIFO (never replaces the node), follows a link (the link stays), and
    refuses a folder; the file is whole or absent."""
    import stat
    import threading

    run = good_run(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    r = bench_cli("export", str(run), "--format", "jsonl", "-o", str(fifo), timeout=120)
    reader.join(timeout=60)
    assert r.returncode == 0, r.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and len(got[0].splitlines()) == 6
    real, link = tmp_path / "real.html", tmp_path / "link.html"
    real.write_text("old")
    link.symlink_to(real)
    r = bench_cli("report", str(run), "-o", str(link), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert link.is_symlink() and "<html" in real.read_text()
    one_line_error(bench_cli("export", str(run), "-o", str(tmp_path), timeout=120), "is a folder")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")], "no temporary file left"


# -- checked once, at load -----------------------------------------------------------------------

DUPLICATES = {  # what YAML's loader and the command line used to take silently, the last one winning
    "a key given twice in a suite": ("suites/twice.yaml", "repetitions: 1\nrepetitions: 5\nworkloads: [sysbench-cpu]\n",
                                     ["suites/twice.yaml", "line 2", "key repetitions given twice"]),
    "a workload defined twice in one catalogue file": (
        "catalogue/twice.yaml", "w-twice:\n  tool: sysbench\n  params: {threads: 1}\n"
                                "w-twice:\n  tool: sysbench\n  params: {threads: 2}\n",
        ["catalogue/twice.yaml", "line 4", "key w-twice given twice"]),
    "a suite naming a workload twice": ("suites/twice.yaml", "workloads: [sysbench-cpu, xz-compress, sysbench-cpu]\n",
                                        ["suites/twice.yaml", "sysbench-cpu named twice"]),
}


@pytest.mark.parametrize("case", list(DUPLICATES), ids=list(DUPLICATES))
def test_something_given_twice_in_a_data_file_is_refused_at_load(config_copy, case):
    where, text, fragments = DUPLICATES[case]
    (config_copy / where).write_text(text)
    one_line_error(bench_cli("--config-dir", str(config_copy), "list"), *fragments)


def test_a_merge_key_may_still_override_what_it_merges(tmp_path):
    from bench import datafile

    (tmp_path / "m.yaml").write_text("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 3\n")
    assert datafile.read_yaml(tmp_path / "m.yaml")["d"] == {"x": 3, "y": 2}


def test_an_environment_given_twice_is_refused(tmp_path):
    r = bench_cli("run", "--suite", "quick", "--env", "host,host", "--out", str(tmp_path / "out"))
    one_line_error(r, "--env: host given twice")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("passed", [["PATH,PATH"], ["PATH", "PATH"], [","]])
def test_a_variable_passed_twice_or_none_is_one_line(tmp_path, passed):
    args = [arg for group in passed for arg in ("--pass-env", group)]
    r = bench_cli("run", "--suite", "quick", "--env", "host", "--out", str(tmp_path / "out"), *args)
    one_line_error(r, "--pass-env")
    assert not (tmp_path / "out").exists()


def test_a_run_id_ending_in_a_newline_is_refused_before_anything_is_made(tmp_path):
    # `$` matches before a final newline: the id passed, a folder "x\n" was made, the host provisioned.
    r = bench_cli("run", "--suite", "quick", "--env", "host", "--out", str(tmp_path / "out"), "--run-id", "x\n")
    one_line_error(r, "invalid run id")
    assert not (tmp_path / "out").exists()
    one_line_error(bench_cli("cleanup", "--run-id", "x\n", "--dry-run"), "invalid run id")


@pytest.mark.parametrize("variable,value,message", [
    ("BENCH_WORKERS", "-1", "BENCH_WORKERS='-1': a number of worker processes"),
    ("BENCH_WORKERS", "abc", "BENCH_WORKERS='abc': a number of worker processes"),
    ("BENCH_CACHE_DIR", "/etc/hostname", "BENCH_CACHE_DIR='/etc/hostname': not a folder"),
    ("BENCH_IMAGE_MIRROR", "deb.debian.org", "BENCH_IMAGE_MIRROR='deb.debian.org': a Debian mirror's URL"),
])
def test_a_variable_that_means_nothing_is_one_line(variable, value, message):
    one_line_error(bench_cli("list", "suites", env={variable: value}), message)
