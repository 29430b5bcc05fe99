"""The host environment's contract, on this machine for real."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from bench.environments import wait_for_port
from bench.environments.host import HostEnvironment


@pytest.fixture
def host(tmp_path):
    env = HostEnvironment("host", {}, "test-run")
    env.provision(str(tmp_path), n_ports=2)
    yield env
    env.teardown()


def test_exec_returns_status_and_output(host):
    r = host.exec(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10)
    assert (r.returncode, r.stdout, r.stderr, r.timed_out) == (3, "out\n", "err\n", False)


def test_exec_of_a_missing_program_is_a_result_not_a_crash(host):
    r = host.exec(["no-such-program-here"], timeout=10)
    assert r.returncode == 127 and not r.ok


def test_timeout_kills_the_whole_process_tree(host):
    # mpirun-like: a parent that leaves a child behind; both must be gone after the timeout.
    marker = f"bench-test-sleeper-{os.getpid()}"
    start = time.monotonic()
    r = host.exec(["sh", "-c", f"exec -a {marker} sleep 300 & sleep 300"], timeout=1)
    assert r.timed_out and r.returncode is None
    assert time.monotonic() - start < 10
    time.sleep(0.2)
    assert not [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]


def test_files_in_and_out(host):
    path = f"{host.workdir}/sub/file.txt"
    host.put_file(path, b"data")
    assert host.get_file(path) == b"data"
    with pytest.raises(FileNotFoundError):
        host.get_file(f"{host.workdir}/missing")


def test_server_is_reachable_at_its_endpoint_and_stops(host):
    port = host.ports[0]
    server = host.start_server(["python3", "-m", "http.server", "--bind", "127.0.0.1", str(port)], "http")
    address, published = host.endpoint(port)
    assert (address, published) == ("127.0.0.1", port)
    assert wait_for_port(address, published, timeout=10)
    server.stop()
    assert not wait_for_port(address, published, timeout=0.5)


def test_teardown_removes_the_workdir_and_servers(tmp_path):
    env = HostEnvironment("host", {}, "test-run")
    env.provision(str(tmp_path), n_ports=1)
    workdir = env.workdir
    assert "test-run" in workdir  # the run id marks what a run made
    server = env.start_server(["sleep", "300"], "sleeper")
    env.teardown()
    assert not os.path.exists(workdir)
    assert server.proc.poll() is not None
    env.teardown()  # twice is harmless


def _interrupted_as_it_starts(monkeypatch):
    """subprocess.Popen as the host environment calls it, with a Ctrl-C landing the moment the
    child exists (after the fork, before Popen returns): the children it made, by pid."""
    import signal
    import subprocess

    from bench.environments import host as host_module

    made: list[int] = []
    real = subprocess.Popen

    def popen(*args, **kwargs):
        proc = real(*args, **kwargs)
        made.append(proc.pid)
        os.kill(os.getpid(), signal.SIGINT)   # handled at once, in this thread: inside Popen's return
        return proc

    monkeypatch.setattr(host_module.subprocess, "Popen", popen)
    return made


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_ctrl_c_as_a_tool_starts_leaves_no_tool_running(monkeypatch, host):
    made = _interrupted_as_it_starts(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        host.exec(["sleep", "30"], timeout=60)
    assert len(made) == 1 and _gone(made[0])


def test_a_ctrl_c_as_a_server_starts_leaves_it_held_for_teardown(monkeypatch, host):
    made = _interrupted_as_it_starts(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        host.start_server(["sleep", "30"], "server")
    assert len(made) == 1 and not _gone(made[0])   # still running, but held:
    host.teardown()
    assert _gone(made[0])


def test_a_tool_stopped_mid_run_says_how_long_it_was_paused(tmp_path):
    """SIGSTOP to the tool, or to a process under it, for about 2 s: the result says so, where its
    wall time alone would pass the pause off as the tool's own time."""
    import signal
    import threading

    from bench.environments.host import run_argv

    def pause(find, seconds: float) -> None:
        time.sleep(0.7)
        pid = find()
        os.kill(pid, signal.SIGSTOP)
        time.sleep(seconds)
        os.kill(pid, signal.SIGCONT)

    # the stopped process is under the tool (a shell's child), as a tool's workers are
    marker = tmp_path / "pid"
    t = threading.Thread(target=pause, args=(lambda: int(marker.read_text()), 2.0))
    t.start()
    r = run_argv(["sh", "-c", f'sleep 3 & echo $! > {marker}; wait'], timeout=30)
    t.join()
    assert r.ok and 1.0 <= r.paused <= 3.0, r
    calm = run_argv(["sleep", "1"], timeout=30)
    assert calm.ok and calm.paused == 0.0


def test_context_and_publish_address_are_given_at_construction(tmp_path):
    from bench.environments.context import ExecutionContext

    context = ExecutionContext.passing(["BENCH_TEST_PASSED"], {"BENCH_TEST_PASSED": "yes"})
    env = HostEnvironment("host", {}, "test-run", context=context, publish_address="127.0.0.2")
    env.provision(str(tmp_path), n_ports=1)
    try:
        assert env.exec(["sh", "-c", 'echo "$BENCH_TEST_PASSED"'], timeout=10).stdout == "yes\n"
        assert env.listen_address == "127.0.0.2" and env.endpoint(env.ports[0]) == ("127.0.0.2", env.ports[0])
        # what it makes of its own (an instance) runs and is reached alike
        assert env.instance(0).env.passed_on() == {"context": context, "publish_address": "127.0.0.2"}
    finally:
        env.teardown()


def test_numa_interleave_travels_with_the_cell_not_the_environment(host):
    """A cell whose workload interleaves runs its commands under numactl --interleave=all; the
    environment itself, and every other cell, keeps the declared context."""
    assert host.for_cell(False) is host
    cell = host.for_cell(True)
    assert cell.context.interleave and not host.context.interleave
    assert cell.workdir == host.workdir and cell.ports is host.ports   # the same environment
    said = cell.exec(["sh", "-c", 'cat /proc/$$/cmdline | tr "\\0" " "'], timeout=10)
    assert said.argv == ["sh", "-c", 'cat /proc/$$/cmdline | tr "\\0" " "']
    wrapped = cell.context.wrap(["fio"], cell.workdir)
    assert wrapped[wrapped.index("bench-context") + 1:] == ["numactl", "--interleave=all", "fio"]
    plain = host.context.wrap(["fio"], host.workdir)
    assert plain[plain.index("bench-context") + 1:] == ["fio"]


def test_a_host_that_cannot_write_a_file_is_a_backend_error(host):
    """The machine's own refusal (here: a folder that is a file) is the backend's fault, said
    with its own words; a missing file is an answer of the contract, not a fault."""
    from bench.environments.base import BackendError

    (Path(host.workdir) / "plain").write_text("")
    with pytest.raises(BackendError, match="Error: .*plain") as caught:
        host.put_file(f"{host.workdir}/plain/inside", b"x")
    assert isinstance(caught.value.__cause__, OSError)
    with pytest.raises(FileNotFoundError):
        host.get_file(f"{host.workdir}/no-such-file")
