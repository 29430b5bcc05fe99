"""Imported by every Python process a fast-lane test starts (tests/lane.py puts this folder on
PYTHONPATH): the same guard as the test's own process."""

import os
import sys

if os.environ.get("BENCH_TESTS_LANE_LOG"):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        import lane
    finally:
        del sys.path[0]
    lane.install(frozenset(os.environ.get(lane.TOOLS, "").split()))
