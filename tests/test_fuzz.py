"""Fuzz: random bytes and random YAML structures as suite, catalogue and environment files, random
JSON lines as samples.jsonl, random values for each workload's parameters. Each ends in a result
or in bench's own error (ConfigError, BenchError) of one short line; never another exception, and
never slowly.

The examples are derandomized, so CI sees the same ones each time and cannot flake; set
BENCH_FUZZ_EXAMPLES (e.g. 5000) to search further with fresh random inputs.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import warnings
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import bench
from bench import config, stats
from bench.errors import BenchError
from bench.store import RunStore
from bench.workloads import TOOLS

from conftest import ROOT

EXAMPLES = int(os.environ.get("BENCH_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=EXAMPLES or 120, derandomize=not EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def assert_one_line(e: Exception) -> None:
    text = str(e)
    assert "\n" not in text and 0 < len(text) <= 700, text[:2000]


@pytest.fixture(scope="module")
def workloads(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("fuzz") / "workloads"
    shutil.copytree(ROOT / "workloads", dest)
    return dest


def load_with(root: Path, name: str, content: bytes) -> None:
    """config.load with one file replaced by `content`: a catalogue or a result, or one line."""
    target = root / name
    before = target.read_bytes() if target.exists() else None
    target.write_bytes(content)
    try:
        config.load(root)
    except BenchError as e:   # ConfigError is one
        assert_one_line(e)
    finally:
        if before is None:
            target.unlink()
        else:
            target.write_bytes(before)


FILES = ["suites/fuzz.yaml", "catalogue/fuzz.yaml", "environments.yaml"]


@FUZZ
@given(name=st.sampled_from(FILES), content=st.binary(max_size=2000))
def test_random_bytes_as_a_data_file(workloads, name, content):
    load_with(workloads, name, content)


scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True)
           | st.text(max_size=20) | st.sampled_from(["fio", "sysbench", "quick", "lab", "host", "docker",
                                                    "sysbench-cpu", "4k", "256M", "read", "tcg"]))
structures = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                          | st.dictionaries(st.text(string.ascii_lowercase + "_-", min_size=1, max_size=12)
                                            | st.sampled_from(["tool", "params", "profiles", "kind", "workloads",
                                                               "repetitions", "profile", "guest", "warmups",
                                                               "timeout", "baseline", "dimension", "affects"]),
                                            inner, max_size=6), max_leaves=30)


@FUZZ
@given(name=st.sampled_from(FILES), doc=structures)
def test_random_yaml_structures_as_a_data_file(workloads, name, doc):
    if name == "catalogue/fuzz.yaml":
        doc = {"fuzz-entry": doc}
    load_with(workloads, name, yaml.safe_dump(doc).encode())


FIELDS = ["run_id", "environment", "env_kind", "workload", "tool", "metric", "unit", "value", "better",
          "repetition", "timestamp", "params", "variant", "parity_ok", "batch", "batch_size"]
GOOD = {"run_id": "r", "environment": "host", "env_kind": "host", "workload": "w", "tool": "t", "metric": "m",
        "unit": "u", "value": 1.0, "better": "higher", "repetition": 1, "timestamp": 0.0}
sample_like = st.fixed_dictionaries({}, optional={f: structures for f in FIELDS}).map(lambda d: {**GOOD, **d})
lines = st.lists(sample_like.map(json.dumps) | st.text(max_size=50), max_size=12)


@FUZZ
@given(rows=lines, host_rows=st.integers(0, 3))
def test_random_json_lines_as_samples(tmp_path_factory, rows, host_rows):
    root = tmp_path_factory.mktemp("runs")
    store = RunStore.create(root, "r")
    store.write_manifest({"run_id": "r", "status": "complete"})
    good = [json.dumps({**GOOD, "repetition": i + 1, "value": 1.0 + i}) for i in range(host_rows)]
    (store.path / "samples.jsonl").write_text("".join(line.replace("\n", " ") + "\n" for line in good + rows))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            df = bench.load(store.path)
        except BenchError as e:
            assert_one_line(e)
            return
    assert len(df) >= host_rows
    if not df.empty:
        stats.summarize(df)   # what the report and compare do with them next


PARAM_VALUES = (st.none() | st.booleans() | st.integers(-2**64, 2**64) | st.floats(allow_nan=True)
                | st.text(max_size=30) | st.lists(st.integers(-5, 10**6), max_size=4)
                | st.sampled_from(["4k", "1M", "16G", "-1M", "4k;ls", "randread", "libaio", "get", "set", "cpu"]))


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_random_parameters_for_every_tool(tool):
    model = TOOLS[tool].Params
    keys = st.sampled_from(sorted(model.model_fields)) | st.text(max_size=10)

    @FUZZ
    @given(params=st.dictionaries(keys, PARAM_VALUES, max_size=6))
    def check(params):
        try:
            model.model_validate(params)
        except ValidationError as e:
            assert_one_line(config._validation_error(Path("catalogue/x.yaml"), "x.params[quick]", e))

    check()
