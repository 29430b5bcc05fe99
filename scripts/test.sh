#!/usr/bin/env bash
# The tests: set up what is missing, then run pytest (unit tests on recorded outputs and
# integration tests against the real tools). Extra arguments go to pytest.
#
#   scripts/test.sh            the full suite, what CI runs (.ci/run)
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
if [ "$fast" -eq 1 ]; then
    # one process per CPU: the fast lane's tests share nothing but the machine (the full suite
    # runs in one, since its tests measure, and check the machine is left as they found it)
    exec .venv/bin/python -m pytest -m "not integration" -n auto "$@"
fi
exec .venv/bin/python -m pytest "$@"
