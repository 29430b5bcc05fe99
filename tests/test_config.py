"""The data folder is validated before anything runs; errors name file, key and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import config
from bench.errors import ConfigError


def test_shipped_catalogue_loads_and_resolves_every_profile():
    cat = config.load()
    assert "quick" in cat.suites and "host" in cat.environments
    for name in cat.workloads:
        for profile in config.PROFILES:
            w = cat.workload(name, profile)
            assert w.timeout > 0 and w.params


def test_profile_overrides_common_params():
    cat = config.load()
    assert cat.workload("fio-randread-4k", "quick").params.size == "256M"
    assert cat.workload("fio-randread-4k", "lab").params.size == "16G"
    assert cat.workload("fio-randread-4k", "lab").params.rw == "randread"


def test_unknown_names_suggest_the_nearest():
    cat = config.load()
    with pytest.raises(ConfigError, match=r"unknown suite 'qiuck' \(did you mean 'quick'\?\)"):
        cat.suite("qiuck")
    with pytest.raises(ConfigError, match=r"did you mean 'host'"):
        cat.environment("hots")


def write(path: Path, text: str) -> None:
    path.write_text(text)


# (file to write, its text, what the error must say)
MALFORMED = [
    ("suites/quick.yaml", "workloads: [fio-randread-4k\n", r"quick.yaml:.*not valid YAML"),
    ("suites/quick.yaml", "- just\n- a list\n", r"quick.yaml: top level"),
    ("suites/quick.yaml", "workloads: []\n", r"quick.yaml: workloads: List should have at least 1 item"),
    ("suites/quick.yaml", "workloads: [fio-randread-4]\n",
     r"unknown workload 'fio-randread-4' in .*quick.yaml: workloads \(did you mean 'fio-randread-4k'\?\)"),
    ("suites/quick.yaml", "repetitions: zero\nworkloads: [hpcc]\n",
     r"quick.yaml: repetitions: Input should be a valid integer.*got 'zero'"),
    ("suites/quick.yaml", "repetitions: 0\nworkloads: [hpcc]\n", r"repetitions: Input should be greater than or equal to 1"),
    ("suites/quick.yaml", "profile: huge\nworkloads: [hpcc]\n", r"unknown profile 'huge'"),
    ("suites/quick.yaml", "workloads: [hpcc]\nrepetiton: 3\n", r"quick.yaml: repetiton: Extra inputs are not permitted"),
    ("suites/Bad Name.yaml", "workloads: [hpcc]\n", r"suite file names are lower-case"),
    ("catalogue/fio.yaml", "fio-x:\n  tool: foi\n", r"unknown tool 'foi' in .*fio.yaml: fio-x.tool \(did you mean 'fio'\?\)"),
    ("catalogue/fio.yaml", "fio-x:\n  tool: fio\n  params: {rw: randread, bs: 4k, iodepth: deep}\n",
     r"fio.yaml: fio-x.params\[quick\].iodepth: Input should be a valid integer"),
    ("catalogue/fio.yaml", "fio-x:\n  tool: fio\n  params: {rw: sideways, bs: 4k}\n",
     r"fio-x.params\[quick\].rw: Input should be 'read'"),
    ("catalogue/fio.yaml", "fio-x:\n  tool: fio\n  params: {rw: read, bs: 4k, blocksize: 8k}\n",
     r"fio-x.params\[quick\].blocksize: Extra inputs are not permitted"),
    ("catalogue/fio.yaml", "fio-x:\n  tool: fio\n  params: {rw: read}\n", r"fio-x.params\[quick\].bs: Field required"),
    ("catalogue/fio.yaml", "fio-x:\n  tool: fio\n  params: {rw: read, bs: 4k}\n  profiles: {fast: {}}\n",
     r"unknown profile 'fast'"),
    ("catalogue/fio.yaml", "fio-x:\n  tool: fio\n  warmups: -1\n  params: {rw: read, bs: 4k}\n",
     r"fio-x.warmups: Input should be greater than or equal to 0"),
    ("catalogue/extra.yaml", "hpcc:\n  tool: hpcc\n", r"catalogue/\w+.yaml: workload 'hpcc' is already defined in .*catalogue/\w+.yaml"),
    ("catalogue/fio.yaml", "FIO:\n  tool: fio\n", r"names are lower-case"),
    ("environments.yaml", "host:\n  kind: hots\n", r"unknown environment kind 'hots'.*did you mean 'host'"),
    ("environments.yaml", "host:\n  kind: host\n  network: nat\n", r"environments.yaml: host.network: Extra inputs"),
    ("environments.yaml", "host: [1, 2]\n", r"environments.yaml: host: Input should be a valid dictionary"),
    ("environments.yaml", "host:\n  kind: host\n  profiles: {big: {}}\n", r"unknown profile 'big' in .*host.profiles"),
    ("environments.yaml", "vm:\n  kind: libvirt\n  profiles: {lab: {memory_mib: lots}}\n",
     r"environments.yaml: vm\[lab\].memory_mib: Input should be a valid integer"),
    ("environments.yaml", "h:\n  kind: host\n  dimension: d\n  baseline: hots\n",
     r"unknown environment 'hots' in .*environments.yaml: h.baseline"),
    ("environments.yaml", "h:\n  kind: host\n  dimension: d\n", r"h: a variant needs both `dimension` and `baseline`"),
    ("environments.yaml", "c:\n  kind: docker\n  network: mesh\n", r"c.network: Input should be 'nat', 'host' or 'bridge'"),
    ("environments.yaml", "c:\n  kind: docker\n  client: container\n", r"client: container needs network: bridge"),
]


@pytest.mark.parametrize("relpath,text,message", MALFORMED, ids=[m[2][:40] for m in MALFORMED])
def test_malformed_data_is_refused_with_file_and_key(config_copy, relpath, text, message):
    write(config_copy / relpath, text)
    with pytest.raises(ConfigError, match=message):
        config.load(config_copy)


def test_missing_config_folder(tmp_path):
    with pytest.raises(ConfigError, match="no such configuration folder"):
        config.load(tmp_path / "nowhere")


def test_environment_variants_follow_the_profile():
    from bench.environments.libvirt import LibvirtVariant

    kvm = config.load().environment("kvm")
    assert LibvirtVariant(**kvm.variant_for("quick")).memory_mib == 2048  # the model's default
    assert LibvirtVariant(**kvm.variant_for("lab")).memory_mib == 32768
    assert kvm.variant_for("lab")["tuned"] is False  # what the profile does not name stays
