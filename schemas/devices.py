"""Per-kind value models, as the registry (:mod:`schemas.kinds`) declares them.

Units are fixed per field (no per-message unit strings) so that a payload cannot
carry "pressure in bar" by accident. Each field's JSON Schema carries ``unit``
(human), ``unitCode`` (UN/CEFACT common code, as FIWARE Smart Data Models use)
and ``fiware`` (the attribute name in the matching Smart Data Model); each kind's
module in ``schemas/kinds/`` documents its FIWARE mapping.

:class:`DeviceKind` is derived from the registry: a kind added there is a member here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic.fields import FieldInfo

from schemas.kinds import KINDS, kind
from schemas.kinds.base import Values
from schemas.kinds.call_unit import CallUnitEvent, CallUnitValues
from schemas.kinds.flood_sensor import FloodSensorValues
from schemas.kinds.manhole_pump import ManholePumpValues
from schemas.kinds.vehicle import VehicleType, VehicleValues
from schemas.kinds.water_block import WaterBlockValues

if TYPE_CHECKING:
    # The type checker's view: the built-in kinds (schemas/kinds/), which code may name
    # as members. The runtime enum below has every registered kind, plugins too (reach
    # those by string: DeviceKind("tank_level")). tests/schemas/test_static_views.py
    # checks this list against schemas/kinds/.
    class DeviceKind(StrEnum):
        """Every registered kind (members are the names in upper case)."""

        CALL_UNIT = "call_unit"
        FLOOD_CAMERA = "flood_camera"
        FLOOD_SENSOR = "flood_sensor"
        MANHOLE_PUMP = "manhole_pump"
        VEHICLE = "vehicle"
        WARNING_SIGN = "warning_sign"
        WATER_BLOCK = "water_block"
        WATER_METER = "water_meter"

else:
    DeviceKind = StrEnum("DeviceKind", {name.upper(): name for name in KINDS}, module=__name__)
    DeviceKind.__doc__ = "Every registered kind (members are the names in upper case)."

_Values = Values  # the old private name


def values_model(kind_name: DeviceKind | str) -> type[Values]:
    """The values model for a device kind (:class:`~schemas.kinds.UnknownKind` if none)."""
    return kind(str(kind_name)).values


def field_unit(kind_name: DeviceKind | str, field: str) -> str | None:
    """The unit of a field, or None for unitless fields (booleans, codes, ids)."""
    info: FieldInfo = values_model(kind_name).model_fields[field]
    extra = info.json_schema_extra
    return extra.get("unit") if isinstance(extra, dict) else None  # type: ignore[return-value]


__all__ = [
    "CallUnitEvent",
    "CallUnitValues",
    "DeviceKind",
    "FloodSensorValues",
    "ManholePumpValues",
    "VehicleType",
    "VehicleValues",
    "WaterBlockValues",
    "field_unit",
    "values_model",
]
