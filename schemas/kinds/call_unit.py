"""Emergency-call pendant base unit lent to elderly residents living alone.

FIWARE: Device (dataModel.Device): ``temperature`` -> ``value`` with
``controlledProperty=temperature``; ``humidity`` -> ``relativeHumidity``. Never public:
its readings describe the inside of a resident's home.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from schemas.kinds.base import Kind, Offline, Values, quantity


class CallUnitEvent(StrEnum):
    BUTTON = "button"
    CANCEL = "cancel"
    HEARTBEAT = "heartbeat"
    NOTICE_SEEN = "notice_seen"  # the resident pressed "I have seen it" on a notice


class CallUnitValues(Values):
    """Emergency-call pendant base unit lent to elderly residents living alone."""

    event: CallUnitEvent | None = Field(
        default=None, description="button, cancel, heartbeat or notice_seen"
    )
    # the line protocol carries it between commas: no separators, at most a UUID's length
    notice_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,35}$",
        description="The notice a notice_seen event answers",
    )
    temperature: float | None = quantity(
        "°C", "CEL", "temperature", ge=-40, le=70, desc="Room temp"
    )
    humidity: float | None = quantity("%", "P1", "relativeHumidity", ge=0, le=100, desc="Room RH")
    battery: float | None = quantity("%", "P1", "batteryLevel", ge=0, le=100, desc="Battery charge")


KIND = Kind(
    name="call_unit",
    values=CallUnitValues,
    title="Emergency-call unit",
    domain="care",
    fiware="Device",
    offline=Offline.EVENTS,
    public=False,
    headline="temperature",
)
