"""Host metadata: flat, snake_case, scalar, never empty (as pyperf's)."""

from __future__ import annotations

import re

import psutil

from bench import metadata


def test_keys_and_values_are_flat_and_readable():
    meta = metadata.host_metadata()
    for key, value in meta.items():
        assert re.match(r"^[a-z][a-z0-9_]+$", key), key
        assert isinstance(value, (str, int, float)), key
        if isinstance(value, str):
            assert value.strip() and "\n" not in value, key


def test_identity_matches_this_machine():
    meta = metadata.host_metadata()
    assert meta["cpu_count"] == psutil.cpu_count()
    assert meta["memory_total_bytes"] == psutil.virtual_memory().total
    assert meta["cpu_model_name"] != metadata.UNAVAILABLE
    assert meta["cpu_governor"]  # "unavailable" in a VM without cpufreq, but said


def test_version_mismatches_are_flagged():
    found = metadata.version_mismatches({
        "host": {"fio": "fio-3.33", "sysbench": "1.0.20"},
        "docker-nat": {"fio": "fio-3.35", "sysbench": "1.0.20"},
    })
    assert found == {"fio": {"host": "fio-3.33", "docker-nat": "fio-3.35"}}
