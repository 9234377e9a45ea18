"""Request and response bodies of the command, notice and automation routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloud.commands.states import CloudState
from schemas.commands import (
    ACTION_PATTERN,
    MAX_COMMAND_LIFETIME,
    NOTICE_TEXT_FORBIDDEN,
    NOTICE_TEXT_MAX,
    CommandPriority,
    Params,
)
from schemas.wire import DeviceId

MAX_TTL_S = MAX_COMMAND_LIFETIME.total_seconds()


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CommandCreate(_In):
    device_id: DeviceId
    action: str = Field(pattern=ACTION_PATTERN, description="e.g. lamp, siren, write")
    params: Params = Field(default_factory=dict)
    priority: CommandPriority = CommandPriority.NORMAL
    ttl_s: float | None = Field(
        default=None, gt=0, le=MAX_TTL_S, description="Lifetime; default commands.default_ttl_s"
    )


class CancelRequest(_In):
    note: str | None = Field(default=None, max_length=500)


class CommandEventPublic(BaseModel):
    at: datetime
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    reason: str | None
    readback: dict[str, Any] | None


class CommandPublic(BaseModel):
    id: str
    gateway_id: str
    device_id: str
    action: str
    params: dict[str, Any]
    priority: str
    issuer: str
    issued_at: datetime
    expires_at: datetime
    state: CloudState
    reason: str | None
    readback: dict[str, Any] | None
    attempts: int
    last_sent_at: datetime | None
    updated_at: datetime
    final_at: datetime | None
    final_source: str | None
    notice_id: str | None
    rule_id: str | None


class CommandDetailPublic(CommandPublic):
    events: list[CommandEventPublic]


class NoticeTargetsIn(_In):
    devices: list[DeviceId] = Field(default_factory=list, max_length=10_000)
    districts: list[str] = Field(default_factory=list, max_length=100)
    polygon: dict[str, Any] | None = Field(
        default=None, description="GeoJSON Polygon or MultiPolygon ([lon, lat] positions)"
    )
    all: bool = False

    @model_validator(mode="after")
    def _something(self) -> NoticeTargetsIn:
        if not (self.devices or self.districts or self.polygon is not None or self.all):
            raise ValueError("name devices, districts, a polygon, or all = true")
        return self


class NoticeCreate(_In):
    # the same limits the gateway checks (schemas.commands): a notice the units cannot show
    # is refused here, naming the field, instead of coming back "rejected" from every unit
    kind: Literal["heat", "disaster"]
    text: str = Field(
        min_length=1,
        max_length=NOTICE_TEXT_MAX,
        pattern=f"^[^{NOTICE_TEXT_FORBIDDEN[1:-1]}]*$",
        description="Short Japanese text, shown on the unit (no commas, '*' or '$')",
    )
    level: str | None = Field(
        default=None,
        max_length=24,
        description="A WBGT stage (warning, severe_warning, danger) or a digit 0-9",
    )
    targets: NoticeTargetsIn
    ttl_s: float | None = Field(default=None, gt=0, le=MAX_TTL_S)


class NoticeSummaryPublic(BaseModel):
    targeted: int
    delivered: int
    seen: int
    failed: int
    rejected: int
    expired: int
    cancelled: int
    pending: int


class NoticePublic(BaseModel):
    id: str
    kind: str
    level: str | None
    text: str
    issuer: str
    created_at: datetime
    expires_at: datetime
    targets: dict[str, Any]
    summary: NoticeSummaryPublic


class MonthKpiPublic(BaseModel):
    month: str
    units_reached: int
    notices_received: int
    notices_seen: int


class KpiPublic(BaseModel):
    call_units: int
    units_with_notice_function: int
    months: list[MonthKpiPublic]


class RulePublic(BaseModel):
    id: str
    type: str
    armed: bool
    changed_by: str | None
    changed_at: datetime | None
    config: dict[str, Any]


class AutomationPublic(BaseModel):
    enabled: bool
    broker_connected: bool
    kill_switch: bool
    last_rule_failure: dict[str, Any] | None
    hold_s: float
    rules: list[RulePublic]


class ArmRequest(_In):
    armed: bool
    reason: str | None = Field(default=None, max_length=500)


class KillSwitchRequest(_In):
    engaged: bool
    reason: str | None = Field(default=None, max_length=500)
