"""water_block -> the water detector (leak, burst, pressure, stuck sensor, range)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloud.detect.base import Detection
from cloud.detect.parts import DetectorPart, Route, register

if TYPE_CHECKING:
    from cloud.detect.engine import DetectorEngine


def _route(engine: DetectorEngine) -> Route:
    water = engine.water

    def route(out: list[Detection], r: Any, info: Any) -> None:
        v = r.values
        water.feed_one(out, r.device_id, r.ts, v.flow, v.pressure)

    return route


PART = register(
    DetectorPart(
        "water_block",
        _route,
        alerts=(
            "leak",
            "burst",
            "pressure_low",
            "pressure_high",
            "stuck_sensor",
            "out_of_range",
            "profile_anomaly",
        ),
    )
)
