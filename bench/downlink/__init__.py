"""Downlink benchmarks (issue 15), edge parts: ``python -m bench.downlink``."""
