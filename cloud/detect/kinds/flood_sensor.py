"""flood_sensor -> the flood-stage detector (depth only; rain is context)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloud.detect.base import Detection
from cloud.detect.parts import DetectorPart, Route, register

if TYPE_CHECKING:
    from cloud.detect.engine import DetectorEngine


def _route(engine: DetectorEngine) -> Route:
    flood = engine.flood

    def route(out: list[Detection], r: Any, info: Any) -> None:
        depth = r.values.depth
        if depth is not None:
            flood.feed_one(out, r.device_id, r.ts, depth)

    return route


PART = register(DetectorPart("flood_sensor", _route, alerts=("flood_stage", "flood_rising")))
