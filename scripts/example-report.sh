#!/usr/bin/env bash
# The example report in reports/: rendered anew from the run folder recorded there (a real run
# of the main job), with a screenshot of its first screen for README.md. Run it after a change
# to the report (tests/test_report_example.py fails while reports/example.html is stale), or
# with another run folder to record: scripts/example-report.sh results/<run-id>
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then
    # a new recording: the run folder itself, its raw outputs included (a few hundred KB)
    rm -rf reports/[0-9]*/
    cp -r "$1" reports/
fi
run=$(find reports -mindepth 2 -maxdepth 2 -name run.json -printf '%h\n' | head -1)
[ -n "$run" ] || { echo "example-report: no run folder under reports/" >&2; exit 2; }
.venv/bin/bench report "$run" -o reports/example.html
# The first screen as a reviewer's browser shows it (1280 x 1000 CSS pixels).
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,1000 \
    --screenshot="$PWD/reports/first-screen.png" "file://$PWD/reports/example.html" 2>/dev/null
echo "example-report: reports/example.html and reports/first-screen.png from $run"
