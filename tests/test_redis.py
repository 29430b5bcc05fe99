"""Redis: the parser on recorded redis-benchmark sweeps, the parameters, and real runs through
bench's command line on the host and in a Docker container (NAT)."""

from __future__ import annotations

import json

from pathlib import Path
import pytest

import bench
from bench import config
from bench.errors import ConfigError, ToolError
from bench.workloads import TOOLS
from bench.workloads.redis import RedisParams

from conftest import bench_cli, fewer_redis_requests, recorded, tools_of

REDIS = TOOLS["redis"]
QUICK = REDIS.Params(clients=[1, 10, 50], requests=20000, data_size=50, keyspace=100000, tests=["get", "set"])


def point(measurements, metric, clients):
    found = [m for m in measurements if m.metric == metric and m.params == {"clients": clients}]
    assert len(found) == 1, (metric, clients, found)
    return found[0]


# -- parser, on recorded output ------------------------------------------------------------

def test_sweep_gives_throughput_and_latency_per_test_and_client_count():
    ms = REDIS.parse(recorded("redis", "get-set-c1-10-50.txt"), QUICK)
    assert len(ms) == 3 * 2 * 6  # client counts x tests x (throughput + 5 latencies)
    assert point(ms, "get_requests_per_second", 10).value == pytest.approx(15290.52)
    assert point(ms, "set_requests_per_second", 1).value == pytest.approx(5581.91)
    p99 = point(ms, "set_latency_p99", 50)
    assert (p99.value, p99.unit, p99.better) == (pytest.approx(8.871), "ms", "lower")
    assert point(ms, "get_latency_mean", 50).value == pytest.approx(2.154)
    rps = point(ms, "get_requests_per_second", 50)
    assert (rps.unit, rps.better) == ("req/s", "higher")
    assert {m.params["clients"] for m in ms} == {1, 10, 50}
    assert {m.metric.split("_")[0] for m in ms} == {"get", "set"}


def test_the_default_parameters_read_the_recorded_sweep():
    assert len(REDIS.parse(recorded("redis", "get-set-c1-10-50.txt"), REDIS.Params())) == 36


def test_server_killed_during_a_point_raises():
    # kill -9 of redis-server during clients=10: redis-benchmark printed its header, then exit 1
    text = recorded("redis", "killed-at-c10.txt")
    assert "Connection reset by peer" in recorded("redis", "killed-at-c10.stderr")
    with pytest.raises(ToolError, match="clients=10"):
        REDIS.parse(text, QUICK.model_copy(update={"requests": 100000}))


def test_no_server_listening_raises():
    # redis-benchmark 7.0 prints two lines to stderr and hangs (killed by `timeout` here), stdout empty
    assert "Connection refused" in recorded("redis", "no-server.stderr")
    with pytest.raises(ToolError):
        REDIS.parse("# clients=1\n" + recorded("redis", "no-server.stdout"), QUICK)
    with pytest.raises(ToolError, match="no '# clients=N' point"):
        REDIS.parse(recorded("redis", "no-server.stdout"), QUICK)


def test_a_missing_point_or_test_or_a_garbled_value_raises():
    text = recorded("redis", "get-set-c1-10-50.txt")
    with pytest.raises(ToolError, match="clients=100"):
        REDIS.parse(text, QUICK.model_copy(update={"clients": [1, 10, 50, 100]}))
    with pytest.raises(ToolError, match="incr"):
        REDIS.parse(text, QUICK.model_copy(update={"tests": ["get", "set", "incr"]}))
    with pytest.raises(ToolError, match="garbled"):
        REDIS.parse(text.replace('"15290.52"', '"fast"'), QUICK)


def test_test_names_with_comments_and_setup_rows():
    # -t ping,mset,lrange: "MSET (10 keys)", "LRANGE_100 (first 100 elements)", and LRANGE's setup
    # row "LPUSH (needed to benchmark LRANGE)", which is no lpush test
    # (made with -t ping,mset,lrange: lrange is a test the workload does not offer, read all the same)
    asked = REDIS.Params(clients=[5], tests=["ping_inline", "ping_mbulk", "mset"])
    ms = REDIS.parse(recorded("redis", "ping-mset-lrange-c5.txt"), asked)
    names = {m.metric for m in ms if m.unit == "req/s"}
    assert names == {"ping_inline_requests_per_second", "ping_mbulk_requests_per_second",
                     "mset_requests_per_second", "lrange_100_requests_per_second",
                     "lrange_300_requests_per_second", "lrange_500_requests_per_second",
                     "lrange_600_requests_per_second"}
    assert point(ms, "mset_requests_per_second", 5).value == pytest.approx(19607.84)


# -- parameters and catalogue ---------------------------------------------------------------

@pytest.mark.parametrize("bad", [{"clients": []}, {"clients": [0]}, {"clients": [10, 10]},
                                 {"tests": ["lrange"]}, {"tests": []}, {"requests": 0}, {"pipeline": 16}])
def test_bad_params_are_refused(bad):
    with pytest.raises(ValueError):
        RedisParams(**bad)


def test_catalogue_entry_is_the_studys_shape():
    cat = config.load()
    quick, lab = cat.workload("redis", "quick"), cat.workload("redis", "lab")
    for w in (quick, lab):
        assert (w.params.data_size, w.params.keyspace, w.params.tests) == (50, 100000, ["get", "set"])
    assert lab.params.requests == 500000 and lab.params.clients[0] == 1 and lab.params.clients[-1] == 50
    assert quick.timeout < lab.timeout  # bounds the whole sweep, which grows with the profile
    argv = REDIS.client_argv(lab.params, "127.0.0.1", 6379, 20)
    assert argv[argv.index("-c") + 1] == "20" and argv[argv.index("-d") + 1] == "50"
    assert argv[argv.index("-r") + 1] == "100000" and argv[argv.index("-t") + 1] == "get,set"


# GET requests/s recorded on this machine's host in the example run (reports/, 3 repetitions'
# means at 1, 10 and 50 clients), the fastest of its environments.
RECORDED_RATES = {1: 14337.7, 10: 133360.7, 50: 144335.5}


def test_the_quick_profile_measures_over_a_second_a_point():
    """20,000 requests at 130,000 req/s were 0.15 s: a clock tick's worth, quantised rates
    (100,000.0, 111,111.1). The quick profile's requests grow with the clients instead: over a
    second a point at the host's recorded rates (redis-benchmark times in ms: 0.1 % at most),
    over 2 s a repetition; a slower path (docker-proxy: 8,000 req/s at 1 client) takes longer."""
    quick = config.load().workload("redis", "quick").params
    seconds = 0.0
    for clients, rate in RECORDED_RATES.items():
        argv = REDIS.client_argv(quick, "127.0.0.1", 6379, clients)
        n = int(argv[argv.index("-n") + 1])
        assert n == quick.requests_at(clients) and n / rate >= 1.0, (clients, n, n / rate)
        seconds += len(quick.tests) * n / rate
    assert seconds >= 2.0
    # and the whole sweep's timeout allows for every point at the slowest rate bench expects
    assert REDIS.timeout(quick) > sum(len(quick.tests) * quick.requests_at(c) / 1000 for c in quick.clients)
    # the default scales nothing: the lab profile's -n is the study's at every point
    lab = config.load().workload("redis", "lab").params
    assert {lab.requests_at(c) for c in lab.clients} == {500000}


def test_a_typo_in_the_catalogue_is_a_config_error(config_copy):
    (config_copy / "catalogue" / "redis.yaml").write_text(
        "redis:\n  tool: redis\n  params: {clients: [1, 10], tests: [get, sett]}\n")
    with pytest.raises(ConfigError, match="redis.params"):
        config.load(config_copy)


# -- real runs through the command line -----------------------------------------------------

def redis_pids(scratch: Path) -> dict[int, str]:
    """The servers and clients the run given `--scratch scratch` started on this machine."""
    return tools_of(scratch, {"redis-server", "redis-benchmark"})


@pytest.fixture
def redis_config(config_copy):
    """The real catalogue with a suite of its own: only `redis`, one repetition, quick, with a
    tenth of its requests."""
    fewer_redis_requests(config_copy)
    (config_copy / "suites" / "redis-only.yaml").write_text(
        "profile: quick\nrepetitions: 1\nworkloads: [redis]\n")
    return config_copy


def check_sweep(run, environment: str) -> None:
    df = bench.load(run)
    rows = df[(df.environment == environment) & (df.workload == "redis")]
    assert set(rows.repetition) == {1}
    for metric in ("get_requests_per_second", "set_requests_per_second", "get_latency_p99", "set_latency_mean"):
        by_clients = rows[rows.metric == metric]
        assert sorted(by_clients.param_clients) == [1, 10, 50], (metric, list(by_clients.param_clients))
        assert (by_clients.value > 0).all(), by_clients
    # a plausible throughput: thousands of requests per second even on a loaded 2-core machine
    assert (rows[rows.metric == "get_requests_per_second"].value > 500).all()
    raw = run / "raw" / environment / "redis"
    text = (raw / "rep-1.txt").read_text()
    assert [line for line in text.splitlines() if line.startswith("# clients=")] == \
        ["# clients=1", "# clients=10", "# clients=50"]
    assert "Ready to accept connections" in (raw / "rep-1.server.txt").read_text()
    assert (raw / "warmup-1.txt").exists()
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["environments"][environment]["tool_versions"]["redis"].startswith("Redis server v=7.")
    assert "(Debian 5:7." in manifest["client_tool_versions"]["redis"]


@pytest.mark.integration
def test_redis_on_the_host(tmp_path, redis_config):
    r = bench_cli("--config-dir", str(redis_config), "run", "--suite", "redis-only", "--env", "host",
                  "--out", str(tmp_path), "--run-id", "redis-host", "--scratch", str(tmp_path / "scratch"))
    assert r.returncode == 0, r.stderr[-3000:]
    check_sweep(tmp_path / "redis-host", "host")
    assert redis_pids(tmp_path / "scratch") == {}
    assert list((tmp_path / "scratch").iterdir()) == []


@pytest.mark.integration
def test_redis_in_docker_nat(tmp_path, redis_config, docker_client):
    from bench import image
    from bench.environments.docker import LABEL_RUN

    image.docker_image(docker_client, image.recipe())  # built once, then cached
    r = bench_cli("--config-dir", str(redis_config), "run", "--suite", "redis-only", "--env", "docker-nat",
                  "--out", str(tmp_path), "--run-id", "redis-nat", "--scratch", str(tmp_path / "scratch"))
    assert r.returncode == 0, r.stderr[-3000:]
    check_sweep(tmp_path / "redis-nat", "docker-nat")
    selector = {"label": f"{LABEL_RUN}=redis-nat"}
    assert docker_client.containers.list(all=True, filters=selector) == []
    assert docker_client.volumes.list(filters=selector) == []
    # the server ran in the container (its processes went with it, above); the client on the host
    assert redis_pids(tmp_path / "scratch") == {}
