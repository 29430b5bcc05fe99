from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lane

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def recorded(*parts: str) -> str:
    """An output recorded from the real tool on a Debian 12 machine (see tests/data/README.md)."""
    return DATA.joinpath(*parts).read_text()


def params(tool: str, **given):
    """A tool's parameters as the plan hands them to the tool: its own model, validated."""
    from bench.workloads import TOOLS

    return TOOLS[tool].Params(**given)


def bench_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real command line in a child process, as a user would."""
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


# The settings a test runs with: the user's variables of this shell, as the command line reads
# them (a developer's BENCH_CACHE_DIR is used by the in-process tests too). Set when the tests
# are collected (a module's skip condition may ask a kind whether it can run), then again before
# every test, since a test that calls the command line in this process sets its own.
TERMINAL = ("COLUMNS", "LINES")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """(pytest -n) A worker gets the terminal variables this process has, and no others: the
    worker starts with COLUMNS=80 and LINES=24 set, which cut the lines the progress tests measure."""
    node.workerinput["bench_terminal"] = {k: os.environ.get(k) for k in TERMINAL}


def pytest_configure(config):
    from bench import settings, workloads

    config.addinivalue_line("markers", "alone: an integration test that changes the machine for every run on "
                            "it (a binary planted in /usr/local, libvirtd restarted, the shared dockerd made a "
                            "swarm manager): scripts/test.sh runs these one at a time, beside the fast lane "
                            "and before the other integration tests, which run two at a time")

    for k, v in getattr(config, "workerinput", {}).get("bench_terminal", {}).items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v

    settings.use(settings.Settings.from_environ(os.environ, workloads.packages()))
    config.bench_settings = settings.current()


# The two lanes. A test that asks for a real daemon's fixture is an integration test by that
# alone; any other test not marked so runs guarded (tests/lane.py): the daemons do not answer
# it (a test that then skips fails), and running a measured tool fails it. So
# `scripts/test.sh --fast` (-m "not integration") needs no daemon on any machine, loses no test
# to a skip, and cannot grow slow with real runs unnoticed.
DAEMON_FIXTURES = frozenset({"docker_client", "vm_image"})


@pytest.hookimpl(tryfirst=True)   # before -m deselects by the marker
def pytest_collection_modifyitems(items):
    for item in items:
        if DAEMON_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("alone"):
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(tryfirst=True)   # before any fixture of the test, whatever its scope, is set up
def pytest_runtest_setup(item):
    if not item.get_closest_marker("integration"):
        item.stash[GUARD] = guard = lane.Guard()
        guard.start()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item):
    try:
        return (yield)
    finally:
        guard = item.stash.get(GUARD, None)
        if guard is not None:
            del item.stash[GUARD]
            refused = guard.stop()
            if refused:
                pytest.fail(f"not marked integration, yet it {'; '.join(refused)} (mark it integration, "
                            "or give it recorded outputs or the in-process kind)", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A guarded test that skips once a daemon said it is not there needed that daemon: it
    fails instead, for it would skip in both lanes and prove nothing anywhere."""
    report = yield
    guard = item.stash.get(GUARD, None)
    if guard is not None and report.skipped and call.when in ("setup", "call"):
        asked = guard.asked()
        if asked:
            report.outcome = "failed"
            report.longrepr = (f"not marked integration, yet it skipped for want of {' and '.join(asked)}: "
                               f"mark it integration ({call.excinfo.value if call.excinfo else ''})")
    return report


GUARD = pytest.StashKey[lane.Guard]()


@pytest.fixture(autouse=True)
def bench_settings(request):
    from bench import settings

    settings.use(request.config.bench_settings)
    return request.config.bench_settings


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    """A private copy of workloads/ that a test may break."""
    dest = tmp_path / "workloads"
    shutil.copytree(ROOT / "workloads", dest)
    return dest


def edit_catalogue(config: Path, name: str, old: str, new: str, count: int = -1) -> None:
    """In a catalogue copy's file `name`, `old` replaced by `new`; `old` must be there (if the
    shipped catalogue changed, the test's copy must change with it)."""
    path = config / "catalogue" / name
    text = path.read_text()
    assert old in text, f"{name} no longer has {old!r}: the catalogue changed, change this test's copy too"
    path.write_text(text.replace(old, new, count))


def no_warmups(config: Path) -> Path:
    """A catalogue copy without warm-ups, for a test whose point is what one repetition of a
    tool gives in an environment: a warm-up runs the same code in the same place first, and is
    proven where a test asks about warm-ups (test_run_host, test_redis)."""
    for catalogue in (config / "catalogue").glob("*.yaml"):
        catalogue.write_text(re.sub(r"(?m)^(\s*warmups:\s*)\d+", r"\g<1>0", catalogue.read_text()))
    return config


# The quick profile cut to about a second a tool, for a test whose point is *where* a tool runs
# (a container, a second dockerd, gVisor, a guest) and what its samples say, not how long it
# runs: the shipped quick sizes are test_run_host's. Under TCG the tools run 10 to 50 times
# slower, and at these sizes they finish there too (fio lays its file out under TCG too: 32 MiB,
# not 256).
SHORT_SIZES = {
    "fio.yaml": ("quick: {size: 256M, runtime: 3}", "quick: {size: 32M, runtime: 1}"),
    "sysbench.yaml": ("quick: {time: 3}", "quick: {time: 1}"),
    "netperf.yaml": ("quick: {length: 3}", "quick: {length: 1}"),
    "hpcc.yaml": ("{n: 4000}", "{n: 500}"),
    "xz.yaml": ("{corpus_mib: 8, block_mib: 2}", "{corpus_mib: 1, block_mib: 1}"),
    "redis.yaml": ("{requests: 20000, scale_clients: 10, clients: [1, 10, 50]}", "{requests: 1000, clients: [1, 10]}"),
    "mariadb.yaml": ("table_size: 10000, threads: [1, 4, 8], time: 3, warmup: 3",
                     "table_size: 1000, threads: [1, 2], time: 1, warmup: 1"),
}


def short_tools(config: Path) -> Path:
    """A catalogue copy whose quick profile runs each tool for about a second (SHORT_SIZES),
    without warm-ups (no_warmups)."""
    for name, (quick, short) in SHORT_SIZES.items():
        edit_catalogue(config, name, quick, short)
    return no_warmups(config)


def fewer_redis_requests(config: Path) -> Path:
    """A catalogue copy whose quick Redis sweep asks a tenth of quick's requests, for a test
    that asks about the sweep's points, the server in its environment and what is left, none of
    which depends on a point's length (through docker-proxy quick's 200,000 requests per point
    cost a minute and a half)."""
    edit_catalogue(config, "redis.yaml", "quick: {requests: 20000,", "quick: {requests: 2000,", 1)
    return config


# The workloads whose quick parameters changed after the main job's run in reports/ was recorded
# (Redis's sweep now scales its requests with the clients): their cells cannot match it.
CHANGED_SINCE_THE_RECORDING = {"redis"}


def same_shapes_as_the_recorded_run(run: Path, short: bool = False) -> None:
    """The cells of a fresh run give the same samples as the main job's recorded run (reports/):
    the same fields, units, directions, parameters and variants, only other values and times.
    Every workload's parameters are the recorded run's, but those named above; a run of
    short_tools is held to the same parameter names, at its own sizes."""
    import json

    recorded_run = next(ROOT.joinpath("reports").glob("*/run.json")).parent
    fresh_params = json.loads((run / "run.json").read_text())["workloads"]
    recorded_params = json.loads((recorded_run / "run.json").read_text())["workloads"]
    if short:
        changed = CHANGED_SINCE_THE_RECORDING & set(fresh_params)
    else:
        changed = {w for w, p in fresh_params.items() if recorded_params.get(w, {}).get("params") != p["params"]}
    assert changed <= CHANGED_SINCE_THE_RECORDING, f"render reports/ anew: {sorted(changed)} changed since"

    def samples(folder: Path) -> list[dict]:
        return [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]

    def cell(s: dict) -> tuple:
        point = sorted(s["params"]) if short else json.dumps(s["params"], sort_keys=True)
        return (s["environment"], s["workload"], s["metric"], json.dumps(point))

    def shape(s: dict) -> tuple:
        volatile = {"value", "timestamp", "run_id", "repetition", "batch", "batch_size"}  # batch: the store's framing
        return (sorted(k for k in s if k not in volatile), s["unit"], s["better"], s["env_kind"], s["tool"],
                json.dumps(s["variant"], sort_keys=True), s["parity_ok"])

    recorded = {cell(s): shape(s) for s in samples(recorded_run)}
    fresh = {cell(s): shape(s) for s in samples(run) if s["workload"] not in changed}
    assert len(fresh) > 30 and fresh.keys() <= recorded.keys(), sorted(fresh.keys() - recorded.keys())[:5]
    assert {c: recorded[c] for c in fresh} == fresh


def no_second_dockerd_left(run_id: str, environment: str) -> None:
    """No folder, no bridge, no process of the run's second dockerd, no container of the run."""
    from bench import settings
    from bench.environments import dockerd

    folder = settings.current().dockerd_root / dockerd.folder_name(run_id, environment)
    assert not folder.exists(), folder
    assert dockerd.processes_of(folder) == []
    bridge = dockerd.bridge_name(run_id, environment)
    assert subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode != 0, bridge
    assert [kind for kind, *_ in dockerd.leftovers(run_id)] == []


def tools_of(scratch: Path, names: set[str] | None = None) -> dict[int, str]:
    """pid -> name of the processes (named in `names`, if given) that the run given `--scratch
    scratch` started on this machine and that still run: a tool on the host or a client host
    starts with HOME set to its environment's folder under the run's scratch
    (environments/context.py). Not every such process on the machine: the integration tests run
    two at a time (scripts/test.sh), and another test's run may have its own tools running. (A
    tool in a container or guest lives there: the container's labels and the guest's domain say
    whether it is left.) Not `bench cleanup`'s own search (cleanup._process_leftovers): that is
    what these tests check, and it looks only under scratch folders still there, where a test
    must also see a tool whose folder its run already removed."""
    import psutil

    roots = {str(Path(scratch)), str(Path(scratch).resolve())}
    found = {}
    for p in psutil.process_iter(["name", "status"]):
        if names is not None and p.info["name"] not in names or p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            home = p.environ().get("HOME", "")
        except psutil.Error:   # gone meanwhile
            continue
        if any(home == root or home.startswith(root + os.sep) for root in roots):
            found[p.pid] = p.info["name"]
    return found


@pytest.fixture(scope="session")
def docker_client():
    """A client of the real dockerd; the Docker tests skip without one, except in CI, where
    they must run for real."""
    from bench.environments.docker import DockerEnvironment, client

    ok, why = DockerEnvironment.availability(DockerEnvironment.Variant())
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Docker tests for real: {why}")
        pytest.skip(why)
    c = client()
    yield c
    c.close()


@pytest.fixture(scope="session")
def vm_image():
    """The workload image's root file system, for guests under TCG (built once, cached); the
    libvirt tests skip without libvirtd, except in CI, where they must run for real."""
    from bench import image
    from bench.environments import libvirt as lv

    ok, why = lv.LibvirtEnvironment.availability(lv.LibvirtEnvironment.Variant.model_validate({"accel": "tcg"}), allow_tcg=True)
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the libvirt tests for real: {why}")
        pytest.skip(why)
    recipe = image.recipe()
    image.build_rootfs(recipe)
    return recipe
