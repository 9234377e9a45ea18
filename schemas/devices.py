"""Per-kind value models: what each field device measures, in which unit, within which range.

Units are fixed per field (no per-message unit strings) so that a payload cannot
carry "pressure in bar" by accident. Each field's JSON Schema carries ``unit``
(human), ``unitCode`` (UN/CEFACT common code, as FIWARE Smart Data Models use)
and ``fiware`` (the attribute name in the matching Smart Data Model).

FIWARE mapping (attribute on the right is the Smart Data Model name):

- ``water_block`` -> WaterObserved (dataModel.WaterQuality/Environment):
  ``flow`` -> ``flow`` (MQH), ``pressure`` -> ``pressure`` (but WaterObserved uses
  hPa; we keep MPa, ``unitCode`` says so), ``totaliser`` -> ``totalFlow`` (MTQ).
- ``flood_sensor`` -> FloodMonitoring (dataModel.Environment):
  ``depth`` -> ``currentLevel`` (CMT), ``rain_intensity`` -> ``precipitation`` (H67, mm/h).
- ``vehicle`` -> Vehicle (dataModel.Transportation):
  ``lat``/``lon`` -> ``location`` (GeoJSON Point), ``speed`` -> ``speed`` (KMH),
  ``heading`` -> ``heading`` (DD), ``vehicle_type`` -> ``vehicleType`` (``bus``;
  a snowplow has no enum value and maps to ``vehicleType=lorry`` with
  ``serviceProvided=[winterMaintenance]``), ``route_id`` -> ``serviceOnRoute``.
- ``call_unit`` -> Device (dataModel.Device): ``temperature`` -> ``value`` with
  ``controlledProperty=temperature``; ``humidity`` -> ``relativeHumidity``.
- ``manhole_pump`` -> Device with ``controlledProperty=[level, motorCurrent]``;
  no dedicated Smart Data Model exists for a sewer pump station.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo


class DeviceKind(StrEnum):
    WATER_BLOCK = "water_block"
    MANHOLE_PUMP = "manhole_pump"
    FLOOD_SENSOR = "flood_sensor"
    VEHICLE = "vehicle"
    CALL_UNIT = "call_unit"


class VehicleType(StrEnum):
    BUS = "bus"
    SNOWPLOW = "snowplow"


class CallUnitEvent(StrEnum):
    BUTTON = "button"
    CANCEL = "cancel"
    HEARTBEAT = "heartbeat"
    NOTICE_SEEN = "notice_seen"  # the resident pressed "I have seen it" on a notice


def _q(unit: str, code: str, fiware: str | None, *, ge: float, le: float, desc: str) -> Any:
    """A measured quantity: optional (report-on-change sends only what changed), bounded."""
    return Field(
        default=None,
        ge=ge,
        le=le,
        description=desc,
        json_schema_extra={"unit": unit, "unitCode": code, "fiware": fiware},
    )


class _Values(BaseModel):
    # forbid: an unknown field is a wiring mistake at the edge, never silently dropped.
    model_config = ConfigDict(extra="forbid", frozen=True)

    def present(self) -> dict[str, Any]:
        """The fields this reading actually carries (None means 'not reported')."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


class WaterBlockValues(_Values):
    """Distribution-block (DMA) inlet meter: flow, pressure, totaliser."""

    flow: float | None = _q("m³/h", "MQH", "flow", ge=-5000, le=50000, desc="Volumetric flow")
    pressure: float | None = _q("MPa", "MPA", "pressure", ge=-0.1, le=2.5, desc="Line pressure")
    totaliser: float | None = _q("m³", "MTQ", "totalFlow", ge=0, le=1e12, desc="Forward totaliser")


class ManholePumpValues(_Values):
    """Sewer manhole pump station PLC: wet-well level and two pumps."""

    level: float | None = _q("m", "MTR", "currentLevel", ge=0, le=30, desc="Wet-well level")
    pump1_running: bool | None = Field(default=None, description="Pump 1 contactor closed")
    pump2_running: bool | None = Field(default=None, description="Pump 2 contactor closed")
    pump1_current: float | None = _q("A", "AMP", None, ge=0, le=1000, desc="Pump 1 motor current")
    pump2_current: float | None = _q("A", "AMP", None, ge=0, le=1000, desc="Pump 2 motor current")
    pump1_run_hours: float | None = _q("h", "HUR", None, ge=0, le=1e7, desc="Pump 1 run hours")
    pump2_run_hours: float | None = _q("h", "HUR", None, ge=0, le=1e7, desc="Pump 2 run hours")
    fault_code: int | None = Field(
        default=None, ge=0, le=65535, description="Controller fault code, 0 = no fault"
    )


class FloodSensorValues(_Values):
    """Road underpass / low-point flood (冠水) sensor with a tipping-bucket rain gauge."""

    depth: float | None = _q("cm", "CMT", "currentLevel", ge=0, le=1000, desc="Water depth")
    rain_intensity: float | None = _q(
        "mm/h", "H67", "precipitation", ge=0, le=500, desc="Rain intensity"
    )


class VehicleValues(_Values):
    """GNSS position of a bus or snowplow (NMEA RMC + GGA)."""

    lat: float | None = _q("°", "DD", "location", ge=-90, le=90, desc="WGS84 latitude")
    lon: float | None = _q("°", "DD", "location", ge=-180, le=180, desc="WGS84 longitude")
    speed: float | None = _q("km/h", "KMH", "speed", ge=0, le=250, desc="Speed over ground")
    heading: float | None = _q("°", "DD", "heading", ge=0, le=360, desc="Course over ground")
    vehicle_type: VehicleType | None = Field(default=None, description="bus or snowplow")
    route_id: str | None = Field(default=None, max_length=64, description="Assigned route")
    fix: bool | None = Field(default=None, description="False when the receiver has no fix")
    fix_quality: int | None = Field(default=None, ge=0, le=8, description="GGA fix quality")
    satellites: int | None = Field(default=None, ge=0, le=64, description="Satellites used")
    hdop: float | None = Field(default=None, ge=0, le=99.99, description="Horizontal DOP")
    plow_down: bool | None = Field(default=None, description="Snowplow blade lowered")


class CallUnitValues(_Values):
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
    temperature: float | None = _q("°C", "CEL", "temperature", ge=-40, le=70, desc="Room temp")
    humidity: float | None = _q("%", "P1", "relativeHumidity", ge=0, le=100, desc="Room RH")
    battery: float | None = _q("%", "P1", "batteryLevel", ge=0, le=100, desc="Battery charge")


_VALUES: dict[DeviceKind, type[_Values]] = {
    DeviceKind.WATER_BLOCK: WaterBlockValues,
    DeviceKind.MANHOLE_PUMP: ManholePumpValues,
    DeviceKind.FLOOD_SENSOR: FloodSensorValues,
    DeviceKind.VEHICLE: VehicleValues,
    DeviceKind.CALL_UNIT: CallUnitValues,
}


def values_model(kind: DeviceKind | str) -> type[_Values]:
    """The values model for a device kind."""
    return _VALUES[DeviceKind(kind)]


def field_unit(kind: DeviceKind | str, field: str) -> str | None:
    """The unit of a field, or None for unitless fields (booleans, codes, ids)."""
    info: FieldInfo = values_model(kind).model_fields[field]
    extra = info.json_schema_extra
    return extra.get("unit") if isinstance(extra, dict) else None  # type: ignore[return-value]
