#!/usr/bin/env bash
# The tests: set up what is missing, then run pytest (unit tests on recorded outputs and
# integration tests against the real tools). Extra arguments go to pytest.
#
#   scripts/test.sh            the full suite, what CI runs (.ci/run): the fast lane (and beside it
#                              the integration tests that must run alone), then the rest of the
#                              integration tests, two at a time
#   scripts/test.sh --fast     the fast lane: every test not marked integration (the logic, the
#                              parsers on recorded outputs, the in-process kind, the report on
#                              recorded runs). It needs no dockerd or libvirtd, and skips the set-up
#                              when .venv is installed for this pyproject.toml (on a fresh machine it
#                              sets up as the full suite does). tests/lane.py sees to it that no
#                              test of it needs a daemon or runs a measured tool.
set -euo pipefail
cd "$(dirname "$0")/.."

fast=0
if [ "${1:-}" = "--fast" ]; then
    fast=1
    shift
fi

# scripts/setup.sh writes this stamp when .venv holds bench for this pyproject.toml.
installed() {
    [ -x .venv/bin/python ] &&
        [ "$(cat .venv/.bench-installed 2>/dev/null)" = "$(sha256sum pyproject.toml | cut -d' ' -f1) test,docker,libvirt" ]
}

if [ "$fast" -eq 1 ]; then
    installed || scripts/setup.sh
else
    scripts/setup.sh
fi
# Headless Chromium opens the HTML report in tests/test_report*.py (only the tests need it).
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
    echo "test: installing chromium"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
fi
# The fast lane in one process per CPU: its tests share nothing but the machine.
if [ "$fast" -eq 1 ]; then
    exec .venv/bin/python -m pytest -m "not integration" -n auto "$@"
fi
# The full suite. First the workload image, as set-up: on a fresh machine that is minutes of
# debootstrap that the first test needing it would otherwise spend while the others wait.
# Then the fast lane, and beside it, in a process of their own, one at a time, the integration
# tests marked `alone`: they change the machine for every run on it (a binary planted in
# /usr/local, libvirtd restarted, the shared dockerd made a swarm manager), and the fast lane's
# tests make no run and ask no daemon (tests/lane.py holds them to it). Their output follows the
# fast lane's.
# Last, the other integration tests, two at a time (each checks what its own run left, by its run
# id and scratch folder, not the whole machine); a file's tests stay in one process (--dist
# loadfile), as they share what their module provisions. Two, as this machine has two cores: the
# tools and the TCG guests keep both busy, and a third at once made the lane slower.
# Status 5 is pytest's "no test selected" (arguments that name tests of some lanes only): an
# error only if no lane ran one.
statuses=()
lane() { .venv/bin/python -m pytest "$@" && statuses+=(0) || statuses+=($?); }
echo "test: the workload image (built once per recipe; minutes on a fresh machine)"
.venv/bin/python -m bench image build
alone_log=$(mktemp)
.venv/bin/python -m pytest -m "integration and alone" "$@" > "$alone_log" 2>&1 &
alone_pid=$!
trap '[ -z "$alone_pid" ] || kill "$alone_pid" 2>/dev/null || true; rm -f "$alone_log"' EXIT
lane -m "not integration" -n auto "$@"
echo "test: the tests marked alone (run beside the fast lane)"
wait "$alone_pid" && statuses+=(0) || statuses+=($?)
alone_pid=""   # reaped: its pid is no longer ours to signal
cat "$alone_log"
lane -m "integration and not alone" -n 2 --dist loadfile "$@"
status=5
for s in "${statuses[@]}"; do
    if [ "$s" -ne 0 ] && [ "$s" -ne 5 ]; then
        exit "$s"
    fi
    [ "$s" -eq 5 ] || status=0
done
exit "$status"
