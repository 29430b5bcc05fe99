"""Benchmarks of bench itself (issue #9): how transparent, how much overhead, how fast the
report. Not tests: they measure and print; run them all with `.venv/bin/python -m benchmarks`."""
