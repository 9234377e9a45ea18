"""The MQTT payloads: gateway batches, readings, statuses, health and metadata.

A gateway publishes one :class:`Batch` per flush on ``akita/v1/<gateway>/telemetry``.
``seq`` increases by one per batch and per gateway, survives restarts (the edge
spool persists it), and is reused unchanged when a batch is re-sent, so the cloud
can tell a duplicate (seq seen) from a gap (seq skipped).

FIWARE mapping: :class:`DeviceStatus` -> Device ``deviceState``; :class:`DeviceInfo`
-> Device (``controlledProperty``, ``location``, ``address.addressLocality`` for
``area``); :class:`GatewayHealth` -> DeviceMeasurement on the gateway Device.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, cast

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    create_model,
    model_validator,
)

from schemas.devices import DeviceKind, VehicleType
from schemas.kinds import KINDS, Kind, Values

WIRE_VERSION: Literal[1] = 1
MAX_READINGS_PER_BATCH = 10_000
# Counters are stored as InfluxDB integers and SQL BIGINTs: both are signed 64-bit.
INT64_MAX = 2**63 - 1
# Every float on the wire has finite bounds on both sides: JSON decoders turn 1e400 into
# inf (and accept NaN), which no comparison with a finite bound lets through, so such a
# value is refused at decode, naming the field, instead of by the store.
MAX_UPTIME_S = 1e10  # ~300 years
MAX_POLL_INTERVAL_S = 86_400.0  # a device polled less than daily is not monitored
BOOT_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"

# Ids end up in MQTT topics and InfluxDB tags: no wildcards, slashes, spaces or commas.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
DeviceId = Annotated[str, Field(pattern=ID_PATTERN, description="Device id, unique city-wide")]
GatewayId = Annotated[str, Field(pattern=ID_PATTERN, description="Gateway id")]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# A reading may carry, besides its kind's fields, the device's declared diagnostic fields
# ("extra", e.g. a flow meter's temperatures and signal quality) and quality flags for
# fields whose value could not be trusted ("quality": such a value is never sent as a
# number). Names are checked against the device's declaration by the cloud.
FIELD_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
FieldName = Annotated[str, Field(pattern=FIELD_NAME_PATTERN)]
MAX_EXTRA_FIELDS = 64
EXTRA_LIMIT = 1e15  # finite on the wire; the device's declared min/max is checked in the cloud
ExtraValue = Annotated[float, Field(ge=-EXTRA_LIMIT, le=EXTRA_LIMIT)] | bool
QUALITY_OK = "ok"  # a quality flag that says: this field is trusted again
QUALITY_SUFFIX = "__quality"  # stored as the field <name>__quality beside the value's field
QualityReason = Annotated[str, Field(min_length=1, max_length=200)]


class _ReadingBase(_Wire):
    device_id: DeviceId
    ts: UtcDatetime = Field(description="When the device was read (UTC)")


_EXTRA = (
    dict[FieldName, ExtraValue] | None,
    Field(
        default=None,
        max_length=MAX_EXTRA_FIELDS,
        description="Declared diagnostic fields of the device (DeviceInfo.extra_fields): "
        "a number within the declared min/max, or a boolean for a field declared without one",
    ),
)
_QUALITY = (
    dict[FieldName, QualityReason] | None,
    Field(
        default=None,
        max_length=MAX_EXTRA_FIELDS,
        description="Field -> why its value cannot be trusted (not a number, infinite, out "
        f"of range, a device error bit); the value itself is not sent. {QUALITY_OK!r}: the "
        "field, flagged before, is trusted again",
    ),
)


def _camel(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


def _reading_model(kind: Kind) -> type[Reading]:
    # create_model's field definitions are runtime type forms (a Literal of the kind's name,
    # its values model): a dict typed Any, since the type checker cannot follow them.
    fields: dict[str, Any] = {
        "kind": (Literal[kind.name], kind.name),
        "values": (kind.values, ...),
        "extra": _EXTRA,
        "quality": _QUALITY,
    }
    model = create_model(
        f"{_camel(kind.name)}Reading",
        __base__=_ReadingBase,
        __module__=__name__,
        __doc__=f"A reading of a {kind.title.lower()} ({kind.name}).",
        **fields,
    )
    # pydantic types the result as the base only; its fields (above) are those of the
    # static Reading below, so every generated model is one for the type checker.
    return cast("type[Reading]", model)


if TYPE_CHECKING:
    # Static views of the models built at runtime from the registry (the runtime builds
    # them in the else branch; plugin kinds exist only there). tests/schemas/
    # test_static_views.py checks these against the built-in kinds in schemas/kinds/.
    from schemas.kinds.call_unit import CallUnitValues
    from schemas.kinds.flood_camera import FloodCameraValues
    from schemas.kinds.flood_sensor import FloodSensorValues
    from schemas.kinds.manhole_pump import ManholePumpValues
    from schemas.kinds.vehicle import VehicleValues
    from schemas.kinds.warning_sign import WarningSignValues
    from schemas.kinds.water_block import WaterBlockValues
    from schemas.kinds.water_meter import WaterMeterValues

    class Reading(_ReadingBase):
        """A reading of any registered kind: at runtime, the union of the kinds' reading
        models, discriminated by ``kind``; every one has these fields."""

        kind: str
        values: Values
        extra: dict[FieldName, ExtraValue] | None = None
        quality: dict[FieldName, QualityReason] | None = None

    # The built-in kinds' models, importable by name (WaterBlockReading, ...)
    class CallUnitReading(Reading):
        kind: Literal["call_unit"] = "call_unit"
        values: CallUnitValues

    class FloodCameraReading(Reading):
        kind: Literal["flood_camera"] = "flood_camera"
        values: FloodCameraValues

    class FloodSensorReading(Reading):
        kind: Literal["flood_sensor"] = "flood_sensor"
        values: FloodSensorValues

    class ManholePumpReading(Reading):
        kind: Literal["manhole_pump"] = "manhole_pump"
        values: ManholePumpValues

    class VehicleReading(Reading):
        kind: Literal["vehicle"] = "vehicle"
        values: VehicleValues

    class WarningSignReading(Reading):
        kind: Literal["warning_sign"] = "warning_sign"
        values: WarningSignValues

    class WaterBlockReading(Reading):
        kind: Literal["water_block"] = "water_block"
        values: WaterBlockValues

    class WaterMeterReading(Reading):
        kind: Literal["water_meter"] = "water_meter"
        values: WaterMeterValues

else:
    # One reading model per registered kind, named <Kind>Reading (WaterBlockReading, ...)
    READING_MODELS = {k: _reading_model(v) for k, v in KINDS.items()}
    globals().update({m.__name__: m for m in READING_MODELS.values()})  # importable, picklable

    Reading = Annotated[
        Union[tuple(READING_MODELS.values())],  # noqa: UP007
        Field(discriminator="kind"),
    ]

READING_MODELS: dict[str, type[Reading]]


def reading_model(kind: str) -> type[Reading]:
    """The reading model of a kind (KeyError for an unknown one)."""
    return READING_MODELS[kind]


reading_adapter: TypeAdapter[Reading] = TypeAdapter(Reading)


class DeviceState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class DeviceStatus(_Wire):
    """A device went online or offline, as seen by its gateway."""

    device_id: DeviceId
    ts: UtcDatetime
    state: DeviceState
    reason: str | None = Field(default=None, max_length=500, description="Why, when offline")


class Batch(_Wire):
    """One gateway publish: readings and device status changes, in spool order."""

    v: Literal[1] = WIRE_VERSION
    gateway_id: GatewayId
    seq: int = Field(ge=0, le=INT64_MAX, description="Per-gateway batch counter, +1 per batch")
    sent_at: UtcDatetime
    readings: list[Reading] = Field(default_factory=list, max_length=MAX_READINGS_PER_BATCH)
    statuses: list[DeviceStatus] = Field(default_factory=list, max_length=1000)


class GatewayState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class GatewayStatus(_Wire):
    """Retained birth message (online) and Last Will (offline) of a gateway."""

    gateway_id: GatewayId
    state: GatewayState
    ts: UtcDatetime | None = Field(default=None, description="Connect time of this session")
    version: str | None = Field(default=None, max_length=40)
    boot_id: str | None = Field(
        default=None,
        pattern=BOOT_ID_PATTERN,
        description="Id of the gateway's seq counter, made when its spool starts a new one. "
        "The cloud accepts a seq that goes back only after a birth with a new boot id.",
    )


class GatewayHealth(_Wire):
    """Periodic self-report of a gateway."""

    gateway_id: GatewayId
    ts: UtcDatetime
    uptime_s: float = Field(ge=0, le=MAX_UPTIME_S)
    spool_depth: int = Field(ge=0, le=INT64_MAX, description="Readings waiting for a broker PUBACK")
    spool_dropped: int = Field(
        ge=0, le=INT64_MAX, description="Readings dropped by the overflow policy"
    )
    devices_total: int = Field(ge=0, le=INT64_MAX)
    devices_online: int = Field(ge=0, le=INT64_MAX)
    poll_errors: int = Field(ge=0, le=INT64_MAX, description="Failed polls since start")
    last_seq: int = Field(ge=-1, le=INT64_MAX, description="Last batch seq handed to the broker")


class ExtraField(_Wire):
    """A diagnostic field a device declares beyond its kind's (a meter's temperature).

    With ``min`` and ``max`` it is a number within them; without, a boolean (a fault bit).
    """

    name: FieldName
    unit: str | None = Field(default=None, max_length=20)
    min: float | None = Field(default=None, ge=-EXTRA_LIMIT, le=EXTRA_LIMIT)
    max: float | None = Field(default=None, ge=-EXTRA_LIMIT, le=EXTRA_LIMIT)
    description: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _range(self) -> ExtraField:
        if (self.min is None) != (self.max is None):
            raise ValueError(f"{self.name}: give both min and max (a number), or neither (a flag)")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"{self.name}: min {self.min} is above max {self.max}")
        return self


class DeviceInfo(_Wire):
    """Where a device is and what it is; published retained by its gateway."""

    device_id: DeviceId
    kind: DeviceKind
    site: str | None = Field(default=None, max_length=80, description="Site name or code")
    district: str | None = Field(default=None, max_length=80, description="Service district")
    area: str | None = Field(default=None, max_length=80, description="Town name (町名)")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    poll_interval_s: float | None = Field(default=None, gt=0, le=MAX_POLL_INTERVAL_S)
    vehicle_type: VehicleType | None = None
    extra_fields: list[ExtraField] | None = Field(
        default=None,
        max_length=MAX_EXTRA_FIELDS,
        description="Diagnostic fields the device sends besides its kind's (Reading.extra)",
    )

    @model_validator(mode="after")
    def _extra_names(self) -> DeviceInfo:
        standard = KINDS[self.kind].values.model_fields
        seen: set[str] = set()
        for i, x in enumerate(self.extra_fields or ()):
            if x.name in standard:
                raise ValueError(
                    f"extra_fields.{i}.name: {x.name!r} is a field of {self.kind}; map it directly"
                )
            if "__" in x.name or x.name in seen:
                why = "has '__' (kept for flag names)" if x.name not in seen else "is twice"
                raise ValueError(f"extra_fields.{i}.name: {x.name!r} {why}")
            seen.add(x.name)
        return self


class GatewayMeta(_Wire):
    """Retained device registry of one gateway."""

    gateway_id: GatewayId
    ts: UtcDatetime
    devices: list[DeviceInfo] = Field(default_factory=list, max_length=20_000)


class DeadLetter(_Wire):
    """A payload the cloud refused, with why. Published on the dead-letter topic."""

    received_at: UtcDatetime
    topic: str = Field(max_length=300)
    reason: str = Field(max_length=2000)
    payload_excerpt: str = Field(max_length=600, description="First bytes, repr-escaped")
    payload_size: int = Field(ge=0)
