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
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from schemas.devices import (
    CallUnitValues,
    DeviceKind,
    FloodSensorValues,
    ManholePumpValues,
    VehicleType,
    VehicleValues,
    WaterBlockValues,
)

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


class _ReadingBase(_Wire):
    device_id: DeviceId
    ts: UtcDatetime = Field(description="When the device was read (UTC)")


class WaterBlockReading(_ReadingBase):
    kind: Literal["water_block"] = "water_block"
    values: WaterBlockValues


class ManholePumpReading(_ReadingBase):
    kind: Literal["manhole_pump"] = "manhole_pump"
    values: ManholePumpValues


class FloodSensorReading(_ReadingBase):
    kind: Literal["flood_sensor"] = "flood_sensor"
    values: FloodSensorValues


class VehicleReading(_ReadingBase):
    kind: Literal["vehicle"] = "vehicle"
    values: VehicleValues


class CallUnitReading(_ReadingBase):
    kind: Literal["call_unit"] = "call_unit"
    values: CallUnitValues


Reading = Annotated[
    WaterBlockReading | ManholePumpReading | FloodSensorReading | VehicleReading | CallUnitReading,
    Field(discriminator="kind"),
]
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
