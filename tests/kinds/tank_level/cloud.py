"""The dummy kind's detector part: ``tank_high`` while the level is above 4 m."""

from __future__ import annotations

from typing import Any

from cloud.detect.base import Detection
from cloud.detect.flags import Flags
from cloud.detect.parts import DetectorPart, Route, register
from schemas.alert import Severity

HIGH_M = 4.0


def _route(engine: Any) -> Route:
    flags = engine.plugins.setdefault("tank_level", Flags("tank_level"))

    def route(out: list[Detection], r: Any, info: Any) -> None:
        level = r.values.level
        if level is not None:
            high = level > HIGH_M
            flags.set(out, r.device_id, "tank_high", r.ts, high, severity=Severity.MODERATE,
                      title="Tank level high", message=f"level {level} m", value=level)  # fmt: skip

    return route


PART = register(DetectorPart("tank_level", _route, alerts=("tank_high",)))
