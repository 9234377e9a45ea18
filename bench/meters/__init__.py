"""Benchmark of the LPWA meter path (issue 22): see ``bench/meters/run.py``."""
