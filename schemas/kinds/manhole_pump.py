"""Sewer manhole pump station PLC: wet-well level and two pumps.

FIWARE: Device with ``controlledProperty=[level, motorCurrent]``; no dedicated Smart
Data Model exists for a sewer pump station.
"""

from __future__ import annotations

from pydantic import Field

from schemas.kinds.base import Kind, Values, quantity


class ManholePumpValues(Values):
    """Sewer manhole pump station PLC: wet-well level and two pumps."""

    level: float | None = quantity("m", "MTR", "currentLevel", ge=0, le=30, desc="Wet-well level")
    pump1_running: bool | None = Field(default=None, description="Pump 1 contactor closed")
    pump2_running: bool | None = Field(default=None, description="Pump 2 contactor closed")
    pump1_current: float | None = quantity(
        "A", "AMP", None, ge=0, le=1000, desc="Pump 1 motor current"
    )
    pump2_current: float | None = quantity(
        "A", "AMP", None, ge=0, le=1000, desc="Pump 2 motor current"
    )
    pump1_run_hours: float | None = quantity(
        "h", "HUR", None, ge=0, le=1e7, desc="Pump 1 run hours"
    )
    pump2_run_hours: float | None = quantity(
        "h", "HUR", None, ge=0, le=1e7, desc="Pump 2 run hours"
    )
    fault_code: int | None = Field(
        default=None, ge=0, le=65535, description="Controller fault code, 0 = no fault"
    )


KIND = Kind(
    name="manhole_pump",
    values=ManholePumpValues,
    title="Sewer manhole pump station",
    domain="sewer",
    fiware="Device",
    headline="level",
)
