#!/usr/bin/env bash
# The tests: set up what is missing, then run pytest (unit tests on recorded outputs and
# integration tests against the real tools). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Headless Chromium opens the HTML report in tests/test_report.py (only the tests need it).
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
    echo "test: installing chromium"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
fi
exec .venv/bin/python -m pytest "$@"
