"""The benchmark harness (pytest-benchmark) and its report: ``python -m benchmarks.report results.json``."""
