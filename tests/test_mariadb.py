"""MariaDB under sysbench OLTP: the parser on recorded sweeps, and real runs on the host and in Docker."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

import bench
from bench import config, owner
from bench.errors import ToolError
from bench.workloads import TOOLS

from conftest import bench_cli, edit_catalogue, recorded

MARIADB = TOOLS["mariadb"]
MARIADB_PARAMS = MARIADB.Params
SWEEP = MARIADB_PARAMS(threads=[1, 4, 16])


def point(measurements, metric, threads):
    [m] = [m for m in measurements if m.metric == metric and m.params == {"threads": threads}]
    return m


# -- parser ---------------------------------------------------------------------------------------

def test_sweep_gives_four_metrics_per_thread_count():
    ms = MARIADB.parse(recorded("mariadb", "oltp-sweep-1-4-16.txt"), SWEEP)
    assert len(ms) == 3 * 4
    assert [m.params["threads"] for m in ms if m.metric == "transactions_per_second"] == [1, 4, 16]
    tps = point(ms, "transactions_per_second", 4)
    assert (tps.value, tps.unit, tps.better) == (pytest.approx(193.66), "trans/s", "higher")
    assert point(ms, "queries_per_second", 16).value == pytest.approx(4710.16)
    avg, p95 = point(ms, "latency_avg", 1), point(ms, "latency_p95", 1)
    assert (avg.value, avg.unit, avg.better) == (pytest.approx(9.67), "ms", "lower")
    assert p95.value == pytest.approx(21.89) and p95.better == "lower"


def test_a_read_only_sweep_parses_alike_and_writes_nothing():
    """The study's mode, recorded: sysbench oltp_read_only prints the same statistics, with no writes."""
    text = recorded("mariadb", "oltp-read-only-1-4-8.txt")
    ms = MARIADB.parse(text, MARIADB_PARAMS(threads=[1, 4, 8]))
    assert [m.params["threads"] for m in ms if m.metric == "transactions_per_second"] == [1, 4, 8]
    assert point(ms, "transactions_per_second", 4).value == pytest.approx(1000.02)
    assert text.count("write:                           0") == 4  # the warm-up and the three points


def test_prepare_and_warm_up_blocks_are_not_measurements():
    text = recorded("mariadb", "oltp-sweep-1-4-16.txt")
    assert "# warm-up threads=16" in text  # its statistics look like a point's, but are not one
    ms = MARIADB.parse(text, SWEEP)
    assert point(ms, "transactions_per_second", 16).value == pytest.approx(235.18)  # not the warm-up's 253.09


def test_no_server_raises_with_sysbenchs_words():
    text = "# threads=1\n" + recorded("mariadb", "no-server.txt")
    with pytest.raises(ToolError, match=r"threads=1: FATAL: unable to connect to MySQL server"):
        MARIADB.parse(text, MARIADB_PARAMS(threads=[1]))


def test_server_killed_mid_point_raises_for_that_point():
    text = recorded("mariadb", "oltp-server-killed.txt")
    with pytest.raises(ToolError, match=r"threads=4: FATAL: .*Lost connection"):
        MARIADB.parse(text, SWEEP)


def test_a_sweep_that_ends_early_raises():
    text = recorded("mariadb", "oltp-sweep-1-4-16.txt")
    cut = text[:text.index("# threads=16")]
    with pytest.raises(ToolError, match=r"threads=16 \(the sweep ended early\)"):
        MARIADB.parse(cut, SWEEP)
    # a point killed before its statistics: the output stops after "Threads started!"
    killed = text[:text.index("SQL statistics", text.index("# threads=16"))]
    with pytest.raises(ToolError, match=r"threads=16: the output ends before the statistics"):
        MARIADB.parse(killed, SWEEP)


def test_output_without_points_raises():
    with pytest.raises(ToolError, match="no '# threads=' point"):
        MARIADB.parse(recorded("mariadb", "no-server.txt"), SWEEP)
    with pytest.raises(ToolError):
        MARIADB.parse("", SWEEP)


# -- parameters and commands ----------------------------------------------------------------------

def test_params_reject_bad_sweeps_and_unknown_keys():
    P = MARIADB.Params
    for bad in ({"threads": []}, {"threads": [0, 4]}, {"threads": 4}, {"buffer_pool": "3 GB"},
                {"bufferpool": "3G"}, {"flush_method": "O_SYNC"}, {"warmup": -1}):
        with pytest.raises(ValueError):
            P(**bad)
    assert P(threads=[10, 30], buffer_pool="3G").threads == [10, 30]


def test_commands_carry_the_studys_settings():
    params = MARIADB.Params(threads=[10, 290], buffer_pool="3G", table_size=2000000, time=60)
    server = MARIADB.server_argv(params, "/d/data", "/d/init.sql", "0.0.0.0", 3306, "/d/mysqld.sock")
    assert server[:2] == ["mariadbd", "--no-defaults"]
    assert {"--innodb-buffer-pool-size=3G", "--innodb-flush-method=O_DIRECT", "--skip-name-resolve",
            "--innodb-flush-log-at-trx-commit=1", "--query-cache-size=0",
            "--bind-address=0.0.0.0", "--port=3306", "--socket=/d/mysqld.sock"} <= set(server)
    assert "--max-connections=310" in server  # 290 client threads must all get a connection
    client = MARIADB.client_argv(params, "127.0.0.1", 3306, "run", threads=290, seconds=60)
    assert client[:2] == ["sysbench", "oltp_read_only"] and client[-1] == "run"  # the study's test
    assert {"--threads=290", "--time=60", "--table-size=2000000", "--mysql-port=3306"} <= set(client)
    rw = MARIADB.client_argv(params.model_copy(update={"mode": "read-write"}), "127.0.0.1", 3306, "run", threads=1, seconds=1)
    assert rw[1] == "oltp_read_write"
    # the whole repetition's limit covers loading 2 M rows and 15 points of 60 s
    lab = MARIADB.Params(threads=list(range(10, 291, 20)), time=60, table_size=2000000)
    assert MARIADB.timeout(lab) > 15 * 60 + 2000000 / 2000


def test_the_lab_profile_is_the_studys_server():
    """mysql/docker-single-container/mysql-opt.cnf: 3G pool, O_DIRECT, log flushed once a second;
    sysbench read-only (every study log says "Doing read-only test"), 2 M rows, 10..290 threads."""
    lab = config.load().workload("mariadb-oltp", "lab").params
    assert (lab.mode, lab.buffer_pool, lab.flush_method, lab.flush_log_at_trx_commit) == (
        "read-only", "3G", "O_DIRECT", 0)
    assert lab.table_size == 2000000 and lab.threads == list(range(10, 291, 20)) and lab.time == 60
    extra = config.load().workload("mariadb-oltp-rw", "lab").params
    assert extra.mode == "read-write" and extra.flush_log_at_trx_commit == 1


# -- real runs through the CLI --------------------------------------------------------------------

def servers_under(folder) -> list[int]:
    """mariadbd processes whose data folder is under `folder` (others may run their own)."""
    return [p.pid for p in psutil.process_iter(["name", "cmdline"])
            if p.info["name"] == "mariadbd" and str(folder) in " ".join(p.info["cmdline"] or [])]


@pytest.fixture
def oltp_config(config_copy):
    """The quick sweep (its threads, table and buffer pool, which the tests check), each point
    measured for 1 s after 1 s of warm-up, not 3 and 3: what is asked is that each point is
    measured, read-only, against a server in its environment."""
    edit_catalogue(config_copy, "mariadb.yaml", "threads: [1, 4, 8], time: 3, warmup: 3,",
                   "threads: [1, 4, 8], time: 1, warmup: 1,")
    (config_copy / "suites" / "oltp.yaml").write_text(
        "profile: quick\nrepetitions: 1\nworkloads: [mariadb-oltp]\n")
    return config_copy


def check_sweep(run, environment: str) -> None:
    df = bench.load(run)
    rows = df[df.environment == environment]
    assert set(rows.workload) - {"provision"} == {"mariadb-oltp"}  # provision: a container's start
    rows = rows[rows.workload == "mariadb-oltp"]
    for metric in ("transactions_per_second", "queries_per_second", "latency_avg", "latency_p95"):
        by_threads = rows[rows.metric == metric].set_index("param_threads")["value"]
        quick = config.load().workload("mariadb-oltp", "quick").params.threads
        assert sorted(by_threads.index) == sorted(quick), (environment, metric)
        assert (by_threads > 0).all(), (environment, metric, by_threads)
    assert (rows["param_table_size"] == 10000).all() and (rows["param_buffer_pool"] == "128M").all()
    assert (rows["param_mode"] == "read-only").all()  # the study's test: sysbench writes nothing
    raw = (run / "raw" / environment / "mariadb-oltp" / "rep-1.txt").read_text()
    writes = [line.split()[1] for line in raw.splitlines() if line.strip().startswith("write:")]
    assert writes and set(writes) == {"0"}, writes


@pytest.mark.integration
def test_oltp_sweep_on_the_host(tmp_path, oltp_config):
    r = bench_cli("--config-dir", str(oltp_config), "run", "--suite", "oltp", "--env", "host",
                  "--out", str(tmp_path), "--run-id", "oltp-host", "--scratch", str(tmp_path / "scratch"))
    assert r.returncode == 0, r.stderr[-3000:]
    check_sweep(tmp_path / "oltp-host", "host")
    server_log = tmp_path / "oltp-host" / "raw" / "host" / "mariadb-oltp" / "rep-1.server.txt"
    assert "ready for connections" in server_log.read_text()
    assert servers_under(tmp_path) == []
    assert list((tmp_path / "scratch").iterdir()) == []


@pytest.mark.integration
def test_oltp_sweep_in_docker_nat(tmp_path, oltp_config, docker_client):
    from bench.environments.docker import LABEL_RUN

    r = bench_cli("--config-dir", str(oltp_config), "run", "--suite", "oltp", "--env", "docker-nat",
                  "--out", str(tmp_path), "--run-id", "oltp-docker", "--scratch", str(tmp_path / "scratch"))
    assert r.returncode == 0, r.stderr[-3000:]
    check_sweep(tmp_path / "oltp-docker", "docker-nat")
    assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_RUN}=oltp-docker"}) == []


@pytest.mark.integration
def test_a_server_that_aborts_fails_fast_and_leaves_nothing(tmp_path):
    """A port already taken: mariadbd aborts, and the repetition says why within seconds."""
    import socket
    import time

    from bench.environments.host import HostEnvironment
    from bench.workloads import CellContext

    env = HostEnvironment("host", {}, "abort")
    env.provision(str(tmp_path), n_ports=1)
    taken = socket.socket()
    try:
        taken.bind(("127.0.0.1", env.ports[0]))
        taken.listen()
        params = MARIADB.Params(threads=[1], time=1, warmup=0)
        start = time.monotonic()
        with pytest.raises(ToolError, match=r"mariadbd did not get ready .*Address already in use"):
            MARIADB.run(CellContext(env, env, params, 120, "mariadb-oltp"))
        assert time.monotonic() - start < 60
        assert servers_under(tmp_path) == []
        assert [p.name for p in Path(env.workdir).iterdir() if p.name != owner.MARKER] == ["mariadbd-mariadb-oltp.log"]
    finally:
        taken.close()
        env.teardown()
