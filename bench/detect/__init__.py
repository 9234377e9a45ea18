"""Detector-tier benchmark: ``python -m bench.detect``."""
