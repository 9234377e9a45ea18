"""vehicle -> the fleet detector (stale position, off route, long stop)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloud.detect.base import Detection
from cloud.detect.parts import DetectorPart, Route, register

if TYPE_CHECKING:
    from cloud.detect.engine import DetectorEngine


def _route(engine: DetectorEngine) -> Route:
    vehicle = engine.vehicle

    def route(out: list[Detection], r: Any, info: Any) -> None:
        vehicle.feed_one(out, r.device_id, r.ts, r.values)

    return route


PART = register(
    DetectorPart("vehicle", _route, alerts=("vehicle_stale", "off_route", "vehicle_long_stop"))
)
