"""Golden container options for every Docker and Podman variant in workloads/environments.yaml:
the Docker SDK's keyword arguments (container_spec.container_options) each variant's container
is made with, as the domain XML's golden files are for the guests.

Regenerate after an intended change with:  BENCH_REGOLD=1 pytest tests/test_container_options.py
and read the diff: it is the container the comparison with native depends on.
"""

from __future__ import annotations

import json
import os

import pytest

from bench import config
from bench.environments import KINDS
from bench.environments.container_spec import WORKDIR, DockerVariant, container_options

from conftest import DATA

GOLDEN = DATA / "container"
CATALOGUE = config.load()
VARIANTS = sorted(n for n, e in CATALOGUE.environments.items() if e.kind in ("docker", "podman"))
PORTS = (40001, 40002)
# Podman's service's hard limits (podman.hard_limits of its pid), fixed for the files.
PODMAN_LIMITS = {"nofile": 524288, "nproc": 63704}


def render(name: str, instance: bool = False) -> str:
    entry = CATALOGUE.environments[name]
    kind = KINDS[entry.kind]
    spec = kind.container_spec(kind.Variant(**entry.variant))
    # What provisioning made and hands on: the run's network and volume are named after the
    # run and the environment; a client namespace's environment publishes on its veth's address.
    resource = f"bench-run1-{name}"
    publish = "10.214.0.1" if spec.client == "namespace" else "127.0.0.1"
    options = container_options(
        spec, publish, PORTS, network=resource if spec.network == "bridge" else None,
        volume=resource if spec.storage == "volume" and not instance else None,
        ulimits=PODMAN_LIMITS if entry.kind == "podman" else None,
        protocols=("tcp",) if instance else ("tcp", "udp"))
    return json.dumps(options, indent=2, sort_keys=True) + "\n"


CASES = [(n, False) for n in VARIANTS] + [("docker-nat", True), ("docker-gvisor", True)]


@pytest.mark.parametrize("name,instance", CASES, ids=[n + ("-instance" if i else "") for n, i in CASES])
def test_golden_container_options(name, instance):
    golden = GOLDEN / f"{name}{'-instance' if instance else ''}.json"
    text = render(name, instance)
    if os.environ.get("BENCH_REGOLD"):
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text()


def test_what_each_variant_means():
    nat = json.loads(render("docker-nat"))
    # ports published 1:1, both protocols, on loopback only; the workdir on the run's volume
    assert nat["ports"]["40001/udp"] == ["127.0.0.1", 40001] and "0.0.0.0" not in json.dumps(nat)
    assert nat["volumes"] == {"bench-run1-docker-nat": {"bind": WORKDIR, "mode": "rw"}}
    assert set(nat) == {"ports", "volumes"}   # nothing else asked of Docker's defaults
    host = json.loads(render("docker-host"))
    assert host["network_mode"] == "host" and "ports" not in host
    assert "volumes" not in json.loads(render("docker-overlay"))
    assert json.loads(render("docker-c2c"))["network"] == "bench-run1-docker-c2c"
    assert json.loads(render("docker-gvisor"))["runtime"] == "runsc"
    assert json.loads(render("docker-cpus-half"))["nano_cpus"] == 500_000_000
    assert json.loads(render("docker-memory-256m"))["mem_limit"] == "256m"
    assert json.loads(render("docker-seccomp-unconfined"))["security_opt"] == ["seccomp=unconfined"]
    assert json.loads(render("docker-cap-drop-all"))["cap_drop"] == ["ALL"]
    podman = json.loads(render("podman"))
    # Podman's runtime is its service's (runc), not an option of the container; its limits are
    # the service's hard ones, which the runtime can set without CAP_SYS_RESOURCE
    assert "runtime" not in podman
    assert podman["ulimits"] == [{"name": "nofile", "soft": 524288, "hard": 524288},
                                 {"name": "nproc", "soft": 63704, "hard": 63704}]
    # A density instance: TCP only, in its own file system
    instance = json.loads(render("docker-nat", instance=True))
    assert set(instance["ports"]) == {"40001/tcp", "40002/tcp"} and "volumes" not in instance


def test_the_options_are_what_the_docker_sdk_takes():
    """Every key is an argument of containers.run(), and the limits become the SDK's Ulimits."""
    docker = pytest.importorskip("docker")
    from docker.models.containers import RUN_CREATE_KWARGS, RUN_HOST_CONFIG_KWARGS
    from docker.types import HostConfig

    for name in VARIANTS:
        options = json.loads(render(name))
        assert set(options) <= set(RUN_CREATE_KWARGS) | set(RUN_HOST_CONFIG_KWARGS) | {"network", "ports", "volumes"}, name
    config = HostConfig(version=docker.constants.DEFAULT_DOCKER_API_VERSION,
                        ulimits=container_options(DockerVariant(), "127.0.0.1", (), ulimits={"nofile": 8})["ulimits"])
    assert config["Ulimits"] == [{"Name": "nofile", "Soft": 8, "Hard": 8}]
