#!/usr/bin/env bash
# The main job: set up what is missing, then run the quick suite on every environment
# available here. Extra arguments go to `bench run` (e.g. --reps 5, --env host).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The workload image (Docker, and the VM disk and kernel the KVM probe boots): once, then cached.
.venv/bin/bench image build >/dev/null
exec .venv/bin/bench run --suite quick "$@"
