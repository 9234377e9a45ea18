"""Settings of the command service and its automatic actions (the ``[commands]``
section of the cloud settings; docs/commands.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from cloud.notify.stages import STAGES
from schemas.commands import (
    ACTION_PATTERN,
    NOTICE_TEXT_FORBIDDEN,
    NOTICE_TEXT_MAX,
    CommandPriority,
    Params,
)
from schemas.wire import DeviceId

EDGE_PARAM = "value"  # the one param of a gateway's device action (edge/actions.py)
RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,39}$")]
# which stage order an alert kind's extra["stage"] follows
KIND_STAGES: dict[str, tuple[str, ...]] = {
    "flood_stage": STAGES["flood"],
    "heat_wbgt": STAGES["heat"],
}


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: RuleId
    alert_kind: str = Field(description="Alert kind that triggers it, e.g. flood_stage")
    min_stage: str = Field(description="Fires when the alert reaches this stage or higher")
    armed: bool = Field(default=True, description="Initial state; operators change it later")

    @model_validator(mode="after")
    def _known_stage(self) -> _Rule:
        order = KIND_STAGES.get(self.alert_kind)
        if order is None:
            raise ValueError(
                f"alert_kind {self.alert_kind!r} has no stages; one of {sorted(KIND_STAGES)}"
            )
        if self.min_stage not in order:
            raise ValueError(f"min_stage {self.min_stage!r} is not one of {list(order)}")
        return self

    def rank(self, stage: object) -> int:
        order = KIND_STAGES[self.alert_kind]
        return order.index(stage) + 1 if stage in order else 0

    def reached(self, stage: object) -> bool:
        return self.rank(stage) >= self.rank(self.min_stage)


class DeviceActionRule(_Rule):
    """Stage reached at ``source`` -> ``action`` with ``params`` on ``target``; the alert's
    resolution -> ``off_params`` (if set)."""

    type: Literal["device_action"] = "device_action"
    source: DeviceId | None = Field(default=None, description="Alerting device; None: any")
    target: DeviceId
    action: str = Field(pattern=ACTION_PATTERN)
    params: Params = Field(default_factory=dict)
    off_params: Params | None = None
    priority: CommandPriority = CommandPriority.LIFE_SAFETY
    ttl_s: float = Field(default=300.0, gt=0, le=86_400)

    @model_validator(mode="after")
    def _edge_params(self) -> DeviceActionRule:
        # the gateway accepts a device action only as {"value": ...} (edge/actions.py);
        # anything else would be rejected there, i.e. during the storm, not here
        for name, params in (("params", self.params), ("off_params", self.off_params)):
            if params is not None and set(params) != {EDGE_PARAM}:
                raise ValueError(
                    f"{name} {params!r}: a gateway's [[devices.actions]] take exactly "
                    f'{{"{EDGE_PARAM}": ...}}, e.g. {{ {EDGE_PARAM} = true }}'
                )
        return self


class AreaNoticeRule(_Rule):
    """Stage reached at a device -> a notice to every call unit in the same ``scope``
    (町名 ``area`` or ``district``), at most one per unit per (JST) day."""

    type: Literal["area_notice"] = "area_notice"
    scope: Literal["area", "district"] = "area"
    notice_kind: Literal["heat", "disaster"] = "heat"
    # the limits the call units have (schemas.commands): refused at load, not at the unit
    text: str = Field(
        min_length=1,
        max_length=NOTICE_TEXT_MAX,
        pattern=f"^[^{NOTICE_TEXT_FORBIDDEN[1:-1]}]*$",
        description="Short Japanese text shown on the unit (no ',', '*' or '$')",
    )
    ttl_s: float = Field(default=3600.0, gt=0, le=86_400)


Rule = Annotated[DeviceActionRule | AreaNoticeRule, Field(discriminator="type")]


class CommandSettings(BaseModel):
    """The command service: its own MQTT account (``akita-cloud`` in production), the
    broker of ``[ingest]``, lifetimes, retries, the staff hold and the rules."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Connect to the broker and publish")
    username: str | None = Field(default=None, description="akita-cloud in production")
    password: SecretStr | None = None
    client_id: str = Field(default="", max_length=64, description="Default: the username")
    default_ttl_s: float = Field(default=600.0, gt=0, le=7 * 86_400)
    notice_ttl_s: float = Field(default=3600.0, gt=0, le=7 * 86_400)
    retry_s: float = Field(
        default=30.0, gt=0, description="Re-publish (same id) while no result arrives"
    )
    hold_s: float = Field(
        default=1800.0, ge=0, description="A staff command holds its device from the rules"
    )
    tick_s: float = Field(default=1.0, gt=0, le=60)
    timezone: str = Field(default="Asia/Tokyo", description="Whose day 'once per day' means")
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_rules(self) -> CommandSettings:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rules: id {rule.id!r} is used twice")
            seen.add(rule.id)
        return self

    def rule(self, rule_id: str) -> DeviceActionRule | AreaNoticeRule | None:
        return next((r for r in self.rules if r.id == rule_id), None)
