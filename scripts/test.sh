#!/usr/bin/env bash
# The tests: set up what is missing, then run pytest (unit tests on recorded outputs and
# integration tests against the real tools). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
