"""Current flood status: every registered flood sensor's latest depth, its stage and the
nearest flood-designated evacuation site."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.models import DeviceRow
from cloud.errors import StoreError
from cloud.shelters import Shelter, nearest_flood_shelter
from cloud.store.base import TimeSeriesStore

log = logging.getLogger(__name__)

# 注意 / 警戒 / 危険 at 10 / 20 / 30 cm (contract C defaults)
DEFAULT_STAGES_CM: tuple[tuple[float, str, str], ...] = (
    (30.0, "danger", "危険"),
    (20.0, "warning", "警戒"),
    (10.0, "caution", "注意"),
)
STAGE_LABELS = {"normal": "平常", "caution": "注意", "warning": "警戒", "danger": "危険"}


def stage_for(depth_cm: float | None) -> str | None:
    if depth_cm is None:
        return None
    for threshold, stage, _ in DEFAULT_STAGES_CM:
        if depth_cm >= threshold:
            return stage
    return "normal"


@dataclass(frozen=True)
class SensorStatus:
    device_id: str
    site: str | None
    area: str | None
    depth_cm: float | None
    measured_at: datetime | None
    stage: str | None  # None = no reading yet (or the store did not answer)
    shelter: Shelter | None
    shelter_distance_m: float | None

    @property
    def stage_label(self) -> str:
        return STAGE_LABELS.get(self.stage or "", "データなし")


def flood_status(sm: sessionmaker[Session], store: TimeSeriesStore | None) -> list[SensorStatus]:
    """One entry per registered flood sensor, worst stage first, then by site name."""
    with sm() as s:
        devices = list(s.scalars(select(DeviceRow).where(DeviceRow.kind == "flood_sensor")))
    out: list[SensorStatus] = []
    for d in devices:
        depth: float | None = None
        at: datetime | None = None
        if store is not None:
            try:
                latest = store.latest(d.device_id)
            except StoreError as e:
                log.warning("flood_status_store_error device=%s reason=%s", d.device_id, e)
                latest = {}
            point = latest.get("depth")
            if point is not None and isinstance(point.value, int | float):
                depth, at = float(point.value), point.ts
        shelter = None
        dist = None
        if d.lat is not None and d.lon is not None:
            # road flood sensors watch inland (内水) flooding as well as river water
            shelter = nearest_flood_shelter(d.lat, d.lon, inland_flood=True)
            dist = shelter.distance_m(d.lat, d.lon) if shelter else None
        out.append(
            SensorStatus(d.device_id, d.site, d.area, depth, at, stage_for(depth), shelter, dist)
        )
    order = {"danger": 0, "warning": 1, "caution": 2, "normal": 3, None: 4}
    out.sort(key=lambda x: (order[x.stage], x.site or x.device_id))
    return out
