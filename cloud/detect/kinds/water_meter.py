"""water_meter -> the household meter detector (:mod:`cloud.detect.meter`).

A meter speaks when it chooses (Class A, several hours per uplink): it is silent, the
generic ``device_offline``, after ``meter.silent_s`` (3 days) without a reading. The
engine multiplies an event period by ``common.offline_intervals``, so the period given
here is the silence divided by it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloud.detect.base import Detection
from cloud.detect.config import DetectConfig
from cloud.detect.meter import ALERTS, MeterDetector
from cloud.detect.parts import DetectorPart, Route, register

if TYPE_CHECKING:
    from cloud.detect.engine import DetectorEngine


def _route(engine: DetectorEngine) -> Route:
    found = engine.plugins.get("water_meter")
    if not isinstance(found, MeterDetector):
        found = MeterDetector(engine.config.meter)
        engine.plugins["water_meter"] = found
    found.cfg = engine.config.meter  # a restored checkpoint runs with today's settings
    meter: MeterDetector = found

    def route(out: list[Detection], r: Any, info: Any) -> None:
        meter.feed_one(out, r.device_id, r.ts, r.values)

    return route


def _silent_period(config: DetectConfig) -> float:
    return config.meter.silent_s / config.common.offline_intervals


PART = register(DetectorPart("water_meter", _route, alerts=ALERTS, event_period_s=_silent_period))
