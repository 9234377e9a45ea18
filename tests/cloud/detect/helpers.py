"""Reading builders for the detector tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.wire import (
    CallUnitReading,
    FloodSensorReading,
    ManholePumpReading,
    VehicleReading,
    WaterBlockReading,
)

T0 = datetime(2026, 7, 1, tzinfo=UTC)
TYPES: dict[str, Any] = {
    "water_block": WaterBlockReading,
    "manhole_pump": ManholePumpReading,
    "flood_sensor": FloodSensorReading,
    "vehicle": VehicleReading,
    "call_unit": CallUnitReading,
}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def reading(kind: str, dev: str, seconds: float, **values: Any) -> Any:
    """A validated reading (the same model the ingest hands to the engine)."""
    return TYPES[kind](device_id=dev, ts=at(seconds), values=values)


def kinds(detections: list[Any], *, active: bool | None = True) -> list[str]:
    return [d.kind for d in detections if active is None or d.active == active]
