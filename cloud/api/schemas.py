"""Request and response bodies of the staff API, one model per role.

``*Public`` models are what the API returns; ``*Create`` / ``*Update`` / ``*Request``
models are what it accepts (they forbid unknown fields, so a typo is a 422).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from cloud.api.auth import NAME_PATTERN, Role
from schemas.alert import Alert, AlertState, Severity
from schemas.wire import ID_PATTERN


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def bounded_utc(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00+14:00 has no UTC equivalent
        raise ValueError("out of range once converted to UTC") from exc
    if not EARLIEST <= utc <= LATEST:
        raise ValueError("must be between 1970-01-01 and 2200-01-01 (UTC)")
    return utc


# An aware time that exists in UTC and lies in 1970..2200: what the stores can hold.
ApiDatetime = Annotated[AwareDatetime, AfterValidator(bounded_utc)]


# -- health ------------------------------------------------------------------------------


class ComponentHealth(BaseModel):
    ok: bool | None = Field(description="None when the component is not configured")
    detail: dict[str, Any] = Field(default_factory=dict)


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"]
    broker: ComponentHealth
    store: ComponentHealth
    ingest: ComponentHealth
    database: ComponentHealth
    gtfs: ComponentHealth | None = None  # the GTFS static feed trip matching uses


# -- devices and gateways ----------------------------------------------------------------


class DevicePublic(BaseModel):
    device_id: str
    kind: str
    gateway_id: str | None
    site: str | None
    district: str | None
    area: str | None
    lat: float | None
    lon: float | None
    poll_interval_s: float | None
    vehicle_type: str | None
    state: str
    state_reason: str | None
    last_seen: datetime | None


class FieldValuePublic(BaseModel):
    ts: datetime
    value: float | int | bool | str | None


class LatestPublic(BaseModel):
    device_id: str
    fields: dict[str, FieldValuePublic]


class GatewayPublic(BaseModel):
    gateway_id: str
    state: str
    state_since: datetime | None
    last_seq: int
    gaps: int
    duplicates: int
    version: str | None
    health: dict[str, Any] | None = Field(description="Last GatewayHealth report")
    last_seen: datetime | None = None


class SeriesPublic(BaseModel):
    device: str
    field: str
    start: datetime
    end: datetime
    window: str | None
    aggregate: str | None
    points: list[FieldValuePublic]


# -- alerts ------------------------------------------------------------------------------


class AlertPublic(Alert):
    """An alert with its stage/extras and who acknowledged it."""

    model_config = ConfigDict(extra="forbid")

    extra: dict[str, Any] = Field(default_factory=dict)
    district: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    cleared_at: datetime | None = Field(
        default=None, description="When the condition cleared (auto-resolve hold-off running)"
    )


class AlertEventPublic(BaseModel):
    at: datetime
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    note: str | None


class AlertDetailPublic(AlertPublic):
    events: list[AlertEventPublic]


class AlertActionRequest(_In):
    note: str | None = Field(default=None, max_length=1000, description="Why (audit trail)")


# -- maintenance windows -----------------------------------------------------------------


class MaintenanceCreate(_In):
    site: str | None = Field(default=None, min_length=1, max_length=80)
    device_id: str | None = Field(default=None, pattern=ID_PATTERN)
    starts_at: ApiDatetime
    ends_at: ApiDatetime
    reason: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _check(self) -> MaintenanceCreate:
        if not self.site and not self.device_id:
            raise ValueError("give site or device_id (or both)")
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class MaintenanceUpdate(_In):
    starts_at: ApiDatetime | None = None
    ends_at: ApiDatetime | None = None
    reason: str | None = Field(default=None, max_length=500)


class MaintenancePublic(BaseModel):
    id: int
    site: str | None
    device_id: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime
    updated_by: str | None
    updated_at: datetime | None
    cancelled_by: str | None
    cancelled_at: datetime | None
    in_force: bool


# -- tokens ------------------------------------------------------------------------------


class TokenCreate(_In):
    name: str = Field(pattern=NAME_PATTERN, description="Who holds it; recorded as the actor")
    role: Role


class TokenPublic(BaseModel):
    id: int
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


class TokenCreatedPublic(TokenPublic):
    token: str = Field(description="The secret. Shown once; only its hash is stored.")


__all__ = [
    "AlertActionRequest",
    "AlertDetailPublic",
    "AlertEventPublic",
    "AlertPublic",
    "AlertState",
    "DevicePublic",
    "GatewayPublic",
    "HealthPublic",
    "LatestPublic",
    "MaintenanceCreate",
    "MaintenancePublic",
    "MaintenanceUpdate",
    "SeriesPublic",
    "Severity",
    "TokenCreate",
    "TokenCreatedPublic",
    "TokenPublic",
]
