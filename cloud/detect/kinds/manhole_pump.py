"""manhole_pump -> the pump-station detector."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloud.detect.base import Detection
from cloud.detect.parts import DetectorPart, Route, register

if TYPE_CHECKING:
    from cloud.detect.engine import DetectorEngine


def _route(engine: DetectorEngine) -> Route:
    pump = engine.pump

    def route(out: list[Detection], r: Any, info: Any) -> None:
        pump.feed_one(out, r.device_id, r.ts, r.values)

    return route


PART = register(
    DetectorPart(
        "manhole_pump",
        _route,
        alerts=(
            "pump_fail_to_start",
            "wet_well_high",
            "pump_short_cycle",
            "pump_current",
            "pump_fault",
            "pump_runtime_imbalance",
        ),
    )
)
