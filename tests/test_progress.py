"""The progress display: its estimate of the time left, and both of its renderings."""

import io
import re

import pytest
from rich.console import Console

from bench.config import WorkloadConfig
from bench.progress import Estimate, Progress, shorten
from bench.plan import Step


def workload(name: str) -> WorkloadConfig:
    return WorkloadConfig(name=name, tool="sysbench", description="", warmups=0, timeout=60.0, params={})


FIO, NET = workload("fio-randread-4k"), workload("netperf-tcp-rr")


def test_estimate_prefers_the_cell_then_the_workload_then_everything():
    e = Estimate()
    assert e.guess(Step("host", FIO, 1)) is None  # nothing finished: no made-up number
    e.record(Step("host", FIO, 1), 10.0)
    e.record(Step("tcg", FIO, 1), 100.0)
    e.record(Step("host", NET, 1), 2.0)
    assert e.guess(Step("tcg", FIO, 2)) == 100.0        # its own cell: the emulated guest is slow
    assert e.guess(Step("docker-nat", FIO, 1)) == 55.0  # not seen there: the workload elsewhere
    assert e.guess(Step("docker-nat", workload("xz"), 1)) == 112.0 / 3  # nothing like it yet
    assert e.left([Step("tcg", FIO, 2), Step("host", NET, 2)]) == 102.0


def test_plain_lines_name_the_step_and_the_time_left():
    out = io.StringIO()
    steps = [Step("host", FIO, 0, 1), Step("host", FIO, 1), Step("docker-nat", FIO, 1)]
    with Progress(steps, stream=out, live=False) as p:
        for s in steps:
            p.begin(s)
            p.end("iops=1e+04 (0.0 s)")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("[1/3] host · fio-randread-4k · warm-up 1 ... iops=")
    assert re.search(r"\[3/3\] docker-nat · fio-randread-4k · rep 1 \.\.\. .* \[0m00s elapsed, ~0m00s left\]$",
                     lines[2])


def test_plain_lines_fit_100_columns_and_keep_a_failures_reason_whole(monkeypatch):
    """In a log (no terminal) as at one: what does not fit after the step's name goes on
    indented lines of its own, and a long reason is wrapped, never cut."""
    monkeypatch.setenv("COLUMNS", "100")
    out = io.StringIO()
    steps = [Step("docker-overlay", workload("mariadb-oltp"), 1), Step("host", FIO, 1)]
    reason = "FAILED (ConnectionError: ('Connection aborted.', FileNotFoundError(2, 'No such file or directory')))"
    with Progress(steps, stream=out, live=False) as p:
        p.begin(steps[0])
        p.end("transactions_per_second=357.2 trans/s (12.8 s)")
        p.begin(steps[1])
        p.end(reason)
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 100 for line in lines), [len(line) for line in lines]
    assert lines[0] == "[1/2] docker-overlay · mariadb-oltp · rep 1 ... "
    assert lines[1].startswith("    transactions_per_second=357.2 trans/s (12.8 s)  [")
    assert " ".join(line.strip() for line in lines[3:]).startswith(reason)


def test_adaptive_rounds_extend_the_total():
    out = io.StringIO()
    first = [Step("host", FIO, 1)]
    with Progress(first, stream=out, live=False) as p:
        p.begin(first[0])
        p.end("ok")
        more = [Step("host", FIO, 2), Step("host", FIO, 3)]
        p.extend(more)
        p.begin(more[0])
    assert "[2/3] host · fio-randread-4k · rep 2" in out.getvalue()


def test_live_bar_prints_each_finished_step_above_it():
    out = io.StringIO()
    steps = [Step("host", NET, 1), Step("docker-nat", NET, 1)]
    with Progress(steps, stream=out, live=True) as p:
        for s in steps:
            p.begin(s)
            p.end("transactions_per_second=6000 trans/s (10.0 s)")
    text = out.getvalue()
    assert "host · netperf-tcp-rr · rep 1: transactions_per_second=6000" in text
    assert "docker-nat · netperf-tcp-rr · rep 1: transactions_per_second=6000" in text


def bar_line(p: Progress) -> str:
    """The live bar as rich draws it now, on a console wide enough not to cut it itself."""
    console = Console(file=io.StringIO(), width=300, color_system=None)
    console.print(p._bar.make_tasks_table(p._bar.tasks))
    return console.file.getvalue().rstrip("\n")


@pytest.mark.parametrize("columns", [60, 100, 200])
def test_live_bar_is_one_line_within_the_terminal_with_the_count_once(monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))   # what shutil.get_terminal_size reads first
    long_env = workload("fio-randread-4k-8jobs")
    steps = [Step("docker-apparmor-unconfined", long_env, rep) for rep in range(1, 12)]
    with Progress(steps, stream=io.StringIO(), live=True) as p:
        p.begin(steps[0])
        p.end("ok")
        p.begin(steps[1])
        line = bar_line(p)
    assert "\n" not in line and len(line) < columns, (len(line), line)
    assert line.count("/11") == 1, line               # the count is the bar's, not the label's too
    assert " · rep 2 " in line                        # cut in the middle: the repetition stays
    whole = "docker-apparmor-unconfined · fio-randread-4k-8jobs · rep 2"
    assert (whole in line) == (columns == 200) and ("…" in line) == (columns < 200), line


def test_shorten_keeps_the_repetition():
    assert shorten("host · sysbench-cpu · rep 1", 40) == "host · sysbench-cpu · rep 1"
    assert shorten("docker-apparmor-unconfined · fio-randread-4k · rep 10", 30) == "docker-apparmor-unco… · rep 10"
    assert shorten("abcdefghij", 5) == "abcd…"
