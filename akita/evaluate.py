"""``akita eval`` with the simulator plugged in: scenarios are exported in-process.

The evaluator lives in ``cloud.detect.evaluate`` and may not import ``firmware_sim``
(tests/test_import_boundaries.py); this composition layer may, and hands it the two
things it needs from the simulator.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from cloud.detect import evaluate

sim_export: ModuleType | None  # None without the simulator
try:  # a cloud-only install has no simulator: 'akita sim export' in a subprocess then
    from firmware_sim import export as sim_export
    from firmware_sim.scenarios import SCENARIOS
except ImportError:  # pragma: no cover - the dev install has both
    sim_export = None


def _export(name: str, out: Path, seed: int, scale: str, days: float | None) -> None:
    assert sim_export is not None
    sim_export.export(name, out, seed=seed, scale=scale, days=days)


if sim_export is not None:
    from akita.meter_report import evaluate_meters

    evaluate.use_simulator(_export, lambda: list(SCENARIOS))
    evaluate.use_meter_eval(evaluate_meters)
app = evaluate.app
