"""A tool's facts (bench.workloads.base.Facts) are its class's, recorded in run.json's workloads,
and the report reads them from the run: a workload bench's report has never heard of is filed
under the resource it declares, its extra metric is on the first screen, a win it calls
implausible is said in its own words, and a client/server tool gets the loopback note. A run
recorded before the facts were kept reads its tool's current ones.

The samples are the recorded example run's (reports/), sysbench-cpu's, given to the new tool."""

from __future__ import annotations

import json
from html import unescape
from pathlib import Path

import pytest

from bench.report import render_runs
from bench.workloads import TOOLS, Workload, facts_of
from bench.workloads.base import RESOURCES

from test_report_example import RUN, glance

WINS = 1.5   # docker-nat's events per second over native's: a win no counter can have


class Tally(Workload):
    """A tool that exists only here: TOOLS does not know it, the report cannot have its name."""

    tool = "tally"
    programs = packages = ()
    resource = "disk"
    metric_resources = {"latency": "network latency"}
    extra_metrics = ("latency_avg",)
    implausible_win = "not plausible for a tally: a count skipped, not a faster disk"
    server_ports = 1
    Params = dict  # never validated here: the report reads run.json, not the catalogue

    def version(self, env):
        return ""

    def run(self, ctx):
        raise NotImplementedError

    @staticmethod
    def parse(text, params):
        return []


def _run_of(tmp_path: Path, name: str, tool: str, facts: dict | None) -> Path:
    """The example run's sysbench-cpu cells of host and docker-nat as workload `name` of `tool`,
    docker-nat WINS times faster, with `facts` in run.json (None: a run recorded before them)."""
    folder = tmp_path / name
    folder.mkdir()
    manifest = json.loads((RUN / "run.json").read_text())
    entry = {**manifest["workloads"]["sysbench-cpu"], "name": name, "tool": tool}
    if facts is not None:
        entry["facts"] = facts
    manifest.update(run_id=name, workloads={name: entry}, workload_order=[name],
                    environment_order=["host", "docker-nat"])
    (folder / "run.json").write_text(json.dumps(manifest))
    rows = []
    for line in (RUN / "samples.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["workload"] != "sysbench-cpu" or r["environment"] not in ("host", "docker-nat"):
            continue
        if r["environment"] == "docker-nat":
            r["value"] = r["value"] * WINS if r["better"] == "higher" else r["value"] / WINS
        rows.append({**r, "run_id": name, "workload": name, "tool": tool})
    (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_a_new_tool_is_shown_by_its_recorded_facts(tmp_path):
    assert "tally" not in TOOLS
    facts = Tally.facts()
    assert facts.client_server and facts.resource_of("latency_avg") == "network latency"
    run = _run_of(tmp_path, "tally-count", "tally", facts.to_json())
    out = render_runs([run], tmp_path / "report.html")
    html = out.read_text()
    first = glance(html)
    # the matrix: the resources the tool declared, in the report's order, and no other
    assert html.index("<th>disk</th>") < html.index("<th>network latency</th>")
    assert "<th>CPU</th>" not in html and "<th>applications</th>" not in html
    # its implausible win, in its own words, where the first screen says what docker-nat costs
    assert "docker-nat beats native on disk" in first and Tally.implausible_win in first
    # its extra metric on the first screen, and the caption says whose it is
    assert "tally-count latency_avg" in first
    assert "headline metric (and tally's network latency results)" in unescape(html)   # the overview
    assert "headline metric, and tally's network latency results)" in unescape(html)   # the matrix
    # a client/server tool: the note on client and server sharing this host
    assert "Client and server on the same host" in html


def test_a_run_recorded_before_the_facts_reads_its_tools_current_ones(tmp_path):
    run = _run_of(tmp_path, "sysbench-cpu", "sysbench", None)
    assert "facts" not in json.loads((run / "run.json").read_text())["workloads"]["sysbench-cpu"]
    html = render_runs([run], tmp_path / "report.html").read_text()
    first = glance(html)
    assert "<th>CPU</th>" in html and "<th>disk</th>" not in html
    assert "docker-nat beats native on CPU" in first and TOOLS["sysbench"].facts().implausible_win in first
    assert "Client and server on the same host" not in html and "headline metric as performance" in html
    assert "each workload's headline metric)," in html   # no extra metric beside the matrix


def test_a_tool_that_does_not_say_what_it_measures_is_refused_when_defined():
    with pytest.raises(TypeError, match="declares no `resource`"):
        class Silent(Workload):   # noqa: F841 - the definition itself is refused
            tool = "silent"
            version = Tally.version
            run = Tally.run
            parse = Tally.parse
    with pytest.raises(TypeError, match="'quantum' is none of"):
        class Odd(Tally):   # noqa: F841
            resource = "quantum"
    with pytest.raises(TypeError, match="'quantum' is none of"):
        class OddMetric(Tally):   # noqa: F841
            metric_resources = {"latency": "quantum"}
    # a workload that sets nothing against native may measure what the matrix has no column for
    assert "instance costs" not in RESOURCES and not facts_of("instances").against_native


def test_a_tool_of_cpu_work_calls_a_win_implausible_without_saying_so():
    """The words come from its resource: a new CPU tool that forgets them is not misread."""
    class Spin(Tally):
        resource = "CPU"
        implausible_win = None
        server_ports = 0
    assert Spin.facts().implausible_win == "not plausible for CPU or memory work: see Parity"
    assert not Spin.facts().client_server
