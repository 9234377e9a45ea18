"""Notification settings: contact groups, staff routes, resident topics, limits,
retries and escalation. Loaded from the ``[notify]`` section of the cloud settings
or a YAML file (see docs/alerts.md for an example).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from cloud.detect.parts import alert_domains
from cloud.notify.channels import known_channel, spec
from cloud.notify.errors import NotifyConfigError
from schemas.alert import Severity
from schemas.kinds import KINDS

Domain = str  # water, sewer, flood, fleet, care (or any name a route uses)

Topic = Literal["flood", "heat"]
DEFAULT_RESIDENT_TOPICS: dict[str, Topic] = {"flood_stage": "flood", "heat_wbgt": "heat"}

# a device kind's domain is declared with the kind (schemas/kinds); an alert kind's is
# that of the device kind whose detector part declares it (cloud/detect/parts.py)
DEVICE_KIND_DOMAINS: dict[str, str] = {name: kind.domain for name, kind in KINDS.items()}


def alert_kind_domains() -> dict[str, str]:
    """Alert kind -> domain, for an alert whose device's kind is not known: the domain of
    the device kind whose detector part declares that alert (``DetectorPart.alerts``)."""
    return {alert: KINDS[kind].domain for alert, kind in alert_domains().items()}


class Member(BaseModel):
    """One contact in a group. ``address`` is an e-mail address, an E.164 number or a
    webhook URL depending on ``channel``; it is never logged."""

    model_config = ConfigDict(extra="forbid")

    channel: Annotated[str, AfterValidator(known_channel)] = Field(
        description="A channel of cloud.notify.channels.SPECS: email, sms, webhook, notice"
    )
    address: str = Field(
        min_length=3,
        max_length=500,
        description="E-mail, E.164 number, URL; notice: device:<id>, district:<name>, "
        "area:<name> or all",
    )
    lang: Literal["ja", "en"] = "ja"
    name: str | None = Field(default=None, max_length=80, description="For the staff UI only")

    @model_validator(mode="after")
    def _address_fits_channel(self) -> Member:
        problem = spec(self.channel).check(self.address)
        if problem:
            raise ValueError(f"address: {problem}")
        return self


class ContactGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    members: list[Member] = Field(default_factory=list)


class Route(BaseModel):
    """Alerts of ``domain`` at ``min_severity`` or worse go to ``groups[0]``; the later
    groups are the escalation ladder for unacknowledged critical alerts."""

    model_config = ConfigDict(extra="forbid")

    domain: Domain
    min_severity: Severity = Severity.MINOR
    groups: list[str] = Field(min_length=1)


class RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_messages: int = Field(ge=1, description="Messages per recipient within window_s")
    window_s: float = Field(gt=0)
    per_alert_cap: int = Field(ge=1, description="Messages per recipient for one alert")


class Retry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=4, ge=1, le=20)
    backoff_s: float = Field(default=1.0, ge=0, description="First wait; doubles each retry")
    backoff_max_s: float = Field(default=60.0, ge=0)


class Escalation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    severities: list[Severity] = Field(default_factory=lambda: [Severity.EXTREME, Severity.SEVERE])
    after_s: float = Field(default=600.0, gt=0, description="Unacknowledged this long -> next")
    max_renotify: int = Field(
        default=3, ge=0, description="Re-notifications after the last group has been reached"
    )


class CapConfig(BaseModel):
    """The CAP 1.2 feed (``/cap/alerts.xml``)."""

    model_config = ConfigDict(extra="forbid")

    sender: str = Field(
        default="alerts.city.akita.example",
        pattern=r"^[^\s,<&]+$",
        description="CAP <sender>: globally unique, no spaces, commas, '<' or '&'",
    )
    sender_name: str = "秋田市"
    identifier_prefix: str = Field(default="akita", pattern=r"^[A-Za-z0-9._-]+$")
    flood_radius_km: float = Field(default=0.5, gt=0, description="Circle around a sensor")
    heat_radius_km: float = Field(
        default=2.0, gt=0, description="Heat areas are coarse: a home's position is private"
    )
    cancel_visible_s: float = Field(
        default=6 * 3600, ge=0, description="How long a Cancel stays in the feed"
    )
    web: str | None = Field(default=None, description="CAP <web>: page about the alerts")


class NotifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    public_base_url: str = Field(
        default="http://localhost:8000", description="Base of unsubscribe links (citizen site)"
    )
    ack_url: str = Field(
        default="http://localhost:8000/console/alerts/{alert_id}",
        description="Staff acknowledgement link (the console's alert page); {alert_id} is "
        "replaced. Unset, it follows api.public_url",
    )
    unsubscribe_path: str = "/citizen/subscriptions/{token}/unsubscribe"
    groups: list[ContactGroup] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    kind_domains: dict[str, Domain] = Field(
        default_factory=dict, description="Explicit alert kind -> domain (wins over defaults)"
    )
    default_domain: Domain = "ops"
    resident_topics: dict[str, Topic] = Field(
        # the stage alerts only: a rate-of-rise forecast (flood_rising) would double the
        # messages of the same flood; map it here to publish it too
        default_factory=lambda: dict(DEFAULT_RESIDENT_TOPICS),
        description="Alert kind (prefix) -> resident topic; only public alerts go to residents",
    )
    resident_notify_downgrades: bool = Field(
        default=False, description="Also message residents when a stage falls"
    )
    resident_all_clear: bool = Field(
        default=True,
        description="Tell the residents who were warned when the alert ends (解除)",
    )
    resident_limit: RateLimit = Field(
        default_factory=lambda: RateLimit(max_messages=6, window_s=3600, per_alert_cap=4)
    )
    staff_limit: RateLimit = Field(
        default_factory=lambda: RateLimit(max_messages=30, window_s=600, per_alert_cap=10)
    )
    retry: Retry = Field(default_factory=Retry)
    escalation: Escalation = Field(default_factory=Escalation)
    workers: int = Field(default=4, ge=1, le=64, description="Concurrent sends")
    recipient_salt: str = Field(
        default="akita", description="Salt of the recipient hash stored with each delivery"
    )
    timezone: str = "Asia/Tokyo"
    cap: CapConfig = Field(default_factory=CapConfig)

    @model_validator(mode="after")
    def _routes_name_groups(self) -> NotifyConfig:
        names = {g.name for g in self.groups}
        for i, route in enumerate(self.routes):
            for g in route.groups:
                if g not in names:
                    raise ValueError(f"routes[{i}].groups names unknown contact group {g!r}")
        return self

    def group(self, name: str) -> ContactGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise NotifyConfigError(f"contact group {name!r} is not configured")

    @classmethod
    def from_file(cls, path: Path) -> NotifyConfig:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            return cls.model_validate(data.get("notify", data))
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise NotifyConfigError(f"notify config {path}: {exc}") from exc
