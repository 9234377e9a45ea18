"""GNSS position of a bus or snowplow (NMEA RMC + GGA).

FIWARE: Vehicle (dataModel.Transportation): ``lat``/``lon`` -> ``location`` (GeoJSON
Point), ``speed`` -> ``speed`` (KMH), ``heading`` -> ``heading`` (DD), ``vehicle_type``
-> ``vehicleType`` (``bus``; a snowplow has no enum value and maps to
``vehicleType=lorry`` with ``serviceProvided=[winterMaintenance]``), ``route_id`` ->
``serviceOnRoute``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from schemas.kinds.base import Kind, Values, quantity


class VehicleType(StrEnum):
    BUS = "bus"
    SNOWPLOW = "snowplow"


class VehicleValues(Values):
    """GNSS position of a bus or snowplow (NMEA RMC + GGA)."""

    lat: float | None = quantity("°", "DD", "location", ge=-90, le=90, desc="WGS84 latitude")
    lon: float | None = quantity("°", "DD", "location", ge=-180, le=180, desc="WGS84 longitude")
    speed: float | None = quantity("km/h", "KMH", "speed", ge=0, le=250, desc="Speed over ground")
    heading: float | None = quantity("°", "DD", "heading", ge=0, le=360, desc="Course over ground")
    vehicle_type: VehicleType | None = Field(default=None, description="bus or snowplow")
    route_id: str | None = Field(default=None, max_length=64, description="Assigned route")
    fix: bool | None = Field(default=None, description="False when the receiver has no fix")
    fix_quality: int | None = Field(default=None, ge=0, le=8, description="GGA fix quality")
    satellites: int | None = Field(default=None, ge=0, le=64, description="Satellites used")
    hdop: float | None = Field(default=None, ge=0, le=99.99, description="Horizontal DOP")
    plow_down: bool | None = Field(default=None, description="Snowplow blade lowered")


KIND = Kind(
    name="vehicle",
    values=VehicleValues,
    title="Bus or snowplow",
    domain="fleet",
    fiware="Vehicle",
    headline="speed",
)
