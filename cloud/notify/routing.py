"""Who gets an alert.

Staff: the alert kind maps to a domain (water, sewer, flood, fleet, care; explicit
``kind_domains`` first, then the device's kind, then the device kind whose detector
declares the alert kind; each kind declares its domain); the first route
of that domain whose ``min_severity`` the alert reaches names the contact groups, in
escalation order.

Residents: only ``public`` alerts whose kind maps to a resident topic (flood, heat).
A confirmed, not unsubscribed subscription receives it when its ``kinds`` include the
topic and its area matches: the same town name (``area``) as the device, or a point
and radius containing the sensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.models import SubscriptionRow
from cloud.notify.config import DEVICE_KIND_DOMAINS, NotifyConfig, Route, alert_kind_domains
from cloud.notify.recipients import Recipient
from schemas.alert import Alert

DeviceKindOf = Callable[[str], str | None]
TokenFor = Callable[[SubscriptionRow], str | None]


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6_371_008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(h))


def by_prefix(kind: str, table: dict[str, Any]) -> Any | None:
    for prefix in sorted(table, key=len, reverse=True):
        if kind.startswith(prefix):
            return table[prefix]
    return None


class Router:
    def __init__(
        self,
        config: NotifyConfig,
        sessionmaker: sessionmaker[Session],
        *,
        device_kind: DeviceKindOf | None = None,
        token_for: TokenFor | None = None,
    ) -> None:
        self.config = config
        self._sm = sessionmaker
        self._device_kind = device_kind
        self._token_for = token_for
        self._alert_domains: dict[str, str] | None = None  # loaded on first use

    # -- staff ---------------------------------------------------------------------

    def domain(self, alert: Alert) -> str:
        cfg = self.config
        if alert.kind in cfg.kind_domains:
            return cfg.kind_domains[alert.kind]
        if self._device_kind is not None and alert.device_id:
            dk = self._device_kind(alert.device_id)
            if dk in DEVICE_KIND_DOMAINS:
                return DEVICE_KIND_DOMAINS[dk]
        if self._alert_domains is None:
            self._alert_domains = alert_kind_domains()
        return self._alert_domains.get(alert.kind, cfg.default_domain)

    def route(self, alert: Alert) -> Route | None:
        domain = self.domain(alert)
        for route in self.config.routes:
            if route.domain == domain and alert.severity.rank >= route.min_severity.rank:
                return route
        return None

    def group_members(self, group: str) -> list[Recipient]:
        g = self.config.group(group)
        return [
            Recipient(channel=m.channel, address=m.address, lang=m.lang, group=g.name)
            for m in g.members
        ]

    # -- residents -----------------------------------------------------------------

    def topic(self, alert: Alert) -> str | None:
        if not alert.public:
            return None
        found = by_prefix(alert.kind, self.config.resident_topics)
        return str(found) if found else None

    def residents(self, alert: Alert) -> list[Recipient]:
        topic = self.topic(alert)
        if topic is None:
            return []
        stmt = select(SubscriptionRow).where(
            SubscriptionRow.confirmed_at.is_not(None), SubscriptionRow.unsubscribed_at.is_(None)
        )
        out: list[Recipient] = []
        with self._sm() as s:
            for sub in s.scalars(stmt):
                if topic not in (sub.kinds or []) or not self._area_matches(sub, alert):
                    continue
                out.append(
                    Recipient(
                        channel=sub.channel,
                        address=sub.address,
                        lang=sub.lang if sub.lang in ("ja", "en") else "ja",
                        audience="resident",
                        subscription_id=sub.id,
                        unsubscribe_url=self._unsubscribe_url(sub),
                    )
                )
        return out

    @staticmethod
    def _area_matches(sub: SubscriptionRow, alert: Alert) -> bool:
        if sub.area and alert.area and sub.area.strip() == alert.area.strip():
            return True
        if None in (sub.lat, sub.lon, sub.radius_m, alert.lat, alert.lon):
            return False
        d = haversine_m(sub.lat, sub.lon, alert.lat, alert.lon)  # type: ignore[arg-type]
        return d <= sub.radius_m  # type: ignore[operator]

    def _unsubscribe_url(self, sub: SubscriptionRow) -> str | None:
        token = self._token_for(sub) if self._token_for is not None else None
        if not token:
            return None
        base = self.config.public_base_url.rstrip("/")
        return base + self.config.unsubscribe_path.format(token=token)
