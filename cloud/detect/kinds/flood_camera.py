"""flood_camera -> ``camera_silent``: no image for longer than the camera's schedule allows.

A camera sends one reading per image it took (``schemas/kinds/flood_camera.py``), on its
own cadence: ``interval_s`` from the gateway's ``[cameras]`` table, which reaches the
registry as the device's ``poll_interval_s``. The alert is raised after
``SILENT_INTERVALS`` images missed in a row, judged on the clock (:meth:`tick`), so staff
learn that the underpass has no picture well before the generic ``device_offline``
(five intervals). It clears with the next image.

Limit: the fast cadence at 注意 (``alert_interval_s``) is a gateway-local rule the cloud
does not see here, so silence is judged against the normal cadence only.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from cloud.detect.base import Detection
from cloud.detect.common import OfflineDetector
from cloud.detect.config import CommonConfig
from cloud.detect.parts import DetectorPart, Route, register
from schemas.alert import Severity

if TYPE_CHECKING:
    from cloud.detect.engine import DetectorEngine

ALERT = "camera_silent"
SILENT_INTERVALS = 2.0  # one late image is jitter; two missed in a row is a camera problem
DEFAULT_INTERVAL_S = 600.0  # the edge's default interval_s, when the registry has none


def _watch(engine: DetectorEngine) -> OfflineDetector:
    """The per-camera silence timers (in ``engine.plugins``, so checkpoints carry them)."""
    found = engine.plugins.get("flood_camera")
    if found is None:
        found = OfflineDetector(
            CommonConfig(),
            kind=ALERT,
            title="Flood camera sends no images",
            severity=Severity.MODERATE,
            name="flood_camera.silent",
        )
        engine.plugins["flood_camera"] = found
    return found


def silent_after_s(info: Any) -> float:
    """How long a camera may send nothing: its schedule's interval times the allowance."""
    interval = getattr(info, "poll_interval_s", None) or DEFAULT_INTERVAL_S
    return SILENT_INTERVALS * float(interval)


def _route(engine: DetectorEngine) -> Route:
    def route(out: list[Detection], r: Any, info: Any) -> None:
        if r.values.image_seq is None:
            return  # a reading without an image (never sent today) says nothing about images
        limit = silent_after_s(info)
        _watch(engine).seen(out, r.device_id, r.ts.timestamp(), r.ts, None, limit_s=limit)

    return route


def _tick(engine: DetectorEngine, now: datetime) -> list[Detection]:
    return _watch(engine).tick(now)


PART = register(DetectorPart("flood_camera", _route, alerts=(ALERT,), tick=_tick))
