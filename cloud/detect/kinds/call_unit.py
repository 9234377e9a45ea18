"""call_unit -> the call-unit detector (button, heartbeat, indoor WBGT).

Call units speak on events and heartbeats: without a poll interval, a unit is offline
after missing the heartbeats the settings expect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloud.detect.base import Detection
from cloud.detect.config import DetectConfig
from cloud.detect.parts import DetectorPart, Route, register

if TYPE_CHECKING:
    from cloud.detect.engine import DetectorEngine


def _route(engine: DetectorEngine) -> Route:
    cu = engine.call_unit

    def route(out: list[Detection], r: Any, info: Any) -> None:
        cu.feed_one(out, r.device_id, r.ts, r.values, info.poll_interval_s if info else None)

    return route


def _heartbeat(config: DetectConfig) -> float:
    return config.call_unit.heartbeat_s


PART = register(
    DetectorPart(
        "call_unit",
        _route,
        alerts=("button_press", "heartbeat_missing", "heat_wbgt"),
        event_period_s=_heartbeat,
    )
)
