"""The public packages stay mypy-clean (the project's rule; ``[tool.mypy]`` in pyproject).

Runs mypy as a developer would, from the repository root with the project's config, and
fails with mypy's own output. Its incremental cache is the default ``.mypy_cache/`` of
the checkout (git-ignored): warm after a developer's own mypy run, cold (and slower) in a
fresh CI checkout (about 2 s warm, 12 s cold, on two cores).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("schemas", "edge", "cloud", "akita", "firmware_sim", "dashboards")


def test_packages_are_mypy_clean() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", *PACKAGES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,  # under the suite's 300 s per-test timeout
    )
    output = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0, f"mypy {' '.join(PACKAGES)} found problems:\n{output}"
