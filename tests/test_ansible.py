"""ansible/: the playbooks parse, pass ansible-lint's production profile, and run for real
against this machine (provisioning, then a tiny suite whose results are fetched back)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import bench

from conftest import ROOT

ANSIBLE = ROOT / "ansible"
PLAYBOOKS = ["provision.yml", "run.yml"]
BIN = Path(sys.executable).parent  # ansible-core and ansible-lint come with the test extra
PLUGINS = Path(__file__).resolve().parent / "ansible_plugins"


def packages_txt() -> list[str]:
    """scripts/packages.txt as both readers take it: '#' starts a comment, names split on spaces."""
    text = (ROOT / "scripts/packages.txt").read_text()
    return " ".join(line.split("#", 1)[0] for line in text.splitlines()).split()


def ansible(*args: str, record: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """A real ansible command from ansible/ (so that its ansible.cfg applies); with `record`,
    every task's result goes there as JSON lines (tests/ansible_plugins/bench_record.py)."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    if record:
        env.update(ANSIBLE_CALLBACK_PLUGINS=str(PLUGINS), ANSIBLE_CALLBACKS_ENABLED="bench_record",
                   BENCH_ANSIBLE_RECORD=str(record))
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True,
                          timeout=timeout, cwd=ANSIBLE, env=env)


class Played:
    """What one ansible-playbook did: exit status, output, each task's result, the recap."""

    def __init__(self, r: subprocess.CompletedProcess, record: Path):
        rows = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
        self.returncode, self.output = r.returncode, r.stdout + r.stderr
        self.results = [row for row in rows if "task" in row]
        self.stats = next((row for row in rows if row.get("stats") == "localhost"), None)

    def task(self, name: str) -> dict:
        """The result of the (last) task whose name (after its role's) starts with `name`."""
        found = [row["result"] for row in self.results if row["task"].split(" : ")[-1].startswith(name)]
        assert found, f"no task {name!r} ran"
        return found[-1]

    def changed_tasks(self) -> list[str]:
        return [row["task"] for row in self.results if row["result"].get("changed")]

    def assert_succeeded(self) -> None:
        assert self.returncode == 0 and self.stats and self.stats["failures"] == 0 \
            and self.stats["unreachable"] == 0, self.output[-5000:]


def play(tmp_path: Path, playbook: str, *extra: str, **variables) -> Played:
    """ansible-playbook on this machine, as the one host of bench_hosts, over a local connection."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("bench_hosts:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    record = tmp_path / f"{playbook}.{len(list(tmp_path.glob('*.jsonl')))}.jsonl"
    # The checkout the tests run from is the host's checkout: its .venv (made by
    # scripts/setup.sh in CI) is used as it is, nothing is copied over itself.
    variables = {"bench_dir": str(ROOT), **variables}
    r = ansible("ansible-playbook", "-i", str(inventory), playbook, "-e", json.dumps(variables), *extra,
                record=record)
    return Played(r, record)


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_playbook_passes_syntax_check(playbook):
    r = ansible("ansible-playbook", "-i", "localhost,", "--syntax-check", playbook)
    assert r.returncode == 0, r.stdout + r.stderr


def test_ansible_lint_passes_production_profile():
    # --offline: no Galaxy here (nor needed: the roles use ansible.builtin only).
    r = ansible("ansible-lint", "--offline", "--nocolor", "--profile", "production", ".")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in r.stderr + r.stdout


def test_setup_sh_reads_the_same_package_list():
    # setup.sh's own line that reads the list, run alone: the two readers agree.
    line = next(s for s in (ROOT / "scripts/setup.sh").read_text().splitlines() if "packages.txt" in s
                and s.startswith("mapfile"))
    r = subprocess.run(["bash", "-c", f'{line}\nprintf "%s\\n" "${{PACKAGES[@]}}"'], cwd=ROOT,
                       capture_output=True, text=True, check=True)
    assert r.stdout.split() == packages_txt()
    assert {"fio", "netperf", "docker.io", "libvirt-daemon-system"} <= set(packages_txt())


# -- for real, against this machine -------------------------------------------------------------

@pytest.fixture(scope="module")
def provisioned(tmp_path_factory):
    """provision.yml once against this machine. scripts/setup.sh has set it up already (CI
    runs it first), so most tasks find their work done; the image is normally built too."""
    return play(tmp_path_factory.mktemp("provision"), "provision.yml")


@pytest.mark.integration
def test_provision_succeeds_with_the_one_package_list(provisioned):
    provisioned.assert_succeeded()
    asked = provisioned.task("Find which packages are installed")["cmd"]
    assert asked[3:] == packages_txt()
    assert provisioned.task("List the missing packages")["ansible_facts"]["bench_tools_missing"] == []
    for name in ("Ask whether dockerd answers", "Ask whether libvirtd answers"):
        assert provisioned.task(name)["rc"] == 0
    if Path("/dev/kvm").exists():
        st = os.stat("/dev/kvm")
        assert (st.st_uid, oct(st.st_mode & 0o777)) == (0, "0o660")
    assert provisioned.task("Build the workload image")["rc"] == 0
    assert (ROOT / ".venv/bin/bench").exists()


@pytest.mark.integration
def test_provision_again_changes_nothing(provisioned, tmp_path):
    provisioned.assert_succeeded()
    again = play(tmp_path, "provision.yml")
    again.assert_succeeded()
    assert again.stats["changed"] == 0, again.changed_tasks()


@pytest.mark.integration
def test_checkout_is_copied_then_left_alone(tmp_path):
    """The copy of the checkout to another folder (a lab host's bench_dir): the sources arrive,
    what belongs to this machine (.git, .venv, results) does not, and a second copy changes nothing."""
    dest = tmp_path / "bench"
    first = play(tmp_path, "provision.yml", "--tags", "checkout", bench_dir=str(dest))
    first.assert_succeeded()
    assert first.stats["changed"] > 0
    for path in ("bench/cli/__init__.py", "scripts/packages.txt", "workloads/suites/quick.yaml", "ansible/run.yml"):
        assert (dest / path).read_bytes() == (ROOT / path).read_bytes(), path
    assert not any((dest / name).exists() for name in (".git", ".venv", "results"))
    assert not list(dest.rglob("__pycache__"))
    again = play(tmp_path, "provision.yml", "--tags", "checkout", bench_dir=str(dest))
    again.assert_succeeded()
    assert again.stats["changed"] == 0, again.changed_tasks()


@pytest.mark.integration
def test_run_fetches_each_hosts_results(provisioned, config_copy, tmp_path):
    """run.yml with a one-workload suite on the host environment: the run folder, named after
    the host, comes back to the controller's results folder and loads."""
    provisioned.assert_succeeded()
    (config_copy / "suites/ansible-smoke.yaml").write_text(
        "description: one quick host-only workload, for the Ansible test\n"
        "profile: quick\nrepetitions: 1\nworkloads: [sysbench-cpu]\n")
    on_host, fetched = tmp_path / "on-host", tmp_path / "fetched"
    doc = play(tmp_path, "run.yml", bench_suite="ansible-smoke", bench_config_dir=str(config_copy),
               bench_run_args=["--env", "host"], bench_remote_results=str(on_host),
               bench_results_dir=str(fetched), bench_run_poll=2, bench_run_timeout=300)
    doc.assert_succeeded()
    runs = list(fetched.iterdir())
    assert len(runs) == 1 and runs[0].name.endswith("-ansible-smoke-localhost"), runs
    assert (on_host / runs[0].name / "run.json").exists()  # the host keeps its copy
    manifest = json.loads((runs[0] / "run.json").read_text())
    assert manifest["status"] == "complete"
    df = bench.load(runs[0])
    assert set(df["run_id"]) == {runs[0].name}
    assert set(df["environment"]) == {"host"} and set(df["workload"]) == {"sysbench-cpu"}
    assert (df[df.metric == "events_per_second"]["value"] > 0).all() and len(df) > 0
    # The archives carried between host and controller are gone.
    assert not list(fetched.glob(".*.tar.gz"))
    archive = doc.task("Make a temporary archive on the host")["path"]
    assert not Path(archive).exists()
