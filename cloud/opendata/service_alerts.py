"""GTFS-Realtime ServiceAlerts that staff write (大雪のため遅延, a closed stop ...).

Kept in the service's database, in a table of this module's own (created on first
use), so they survive a restart. Each alert names what it affects (routes, stops, or
the whole agency), when (``active_from``/``active_until``, open-ended when absent),
a cause and effect from the GTFS-Realtime enums, and Japanese text with an optional
English translation. :func:`build_service_alerts` turns the active ones into a
FULL_DATASET feed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.transit import gtfs_realtime_pb2 as rt
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
)

from cloud.opendata.gtfs_rt import new_feed

CAUSES = tuple(rt.Alert.Cause.keys())
EFFECTS = tuple(rt.Alert.Effect.keys())

_meta = MetaData()
TABLE = Table(
    "opendata_service_alerts",
    _meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("active_from", DateTime(timezone=True)),
    Column("active_until", DateTime(timezone=True)),
    Column("cause", String(32), nullable=False),
    Column("effect", String(32), nullable=False),
    Column("route_ids", Text, nullable=False),  # JSON list
    Column("stop_ids", Text, nullable=False),
    Column("header_ja", Text, nullable=False),
    Column("description_ja", Text, nullable=False),
    Column("header_en", Text),
    Column("description_en", Text),
    Column("url", Text),
)


class ServiceAlertError(ValueError):
    """A bad alert: names the field and the value."""


@dataclass(frozen=True)
class ServiceAlert:
    id: int
    created_at: datetime
    created_by: str
    active_from: datetime | None
    active_until: datetime | None
    cause: str
    effect: str
    route_ids: tuple[str, ...]
    stop_ids: tuple[str, ...]
    header_ja: str
    description_ja: str
    header_en: str | None = None
    description_en: str | None = None
    url: str | None = None

    def active(self, at: datetime) -> bool:
        return (self.active_from is None or self.active_from <= at) and (
            self.active_until is None or at < self.active_until
        )


def _aware(value: datetime | None) -> datetime | None:
    # SQLite gives naive datetimes back: they were stored as UTC
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class ServiceAlertStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        _meta.create_all(engine)

    def create(
        self,
        *,
        created_by: str,
        header_ja: str,
        description_ja: str = "",
        cause: str = "UNKNOWN_CAUSE",
        effect: str = "UNKNOWN_EFFECT",
        route_ids: Sequence[str] = (),
        stop_ids: Sequence[str] = (),
        active_from: datetime | None = None,
        active_until: datetime | None = None,
        header_en: str | None = None,
        description_en: str | None = None,
        url: str | None = None,
        known_routes: frozenset[str] | None = None,
        now: datetime | None = None,
    ) -> ServiceAlert:
        if cause not in CAUSES:
            raise ServiceAlertError(f"cause: {cause!r} is not one of {', '.join(CAUSES)}")
        if effect not in EFFECTS:
            raise ServiceAlertError(f"effect: {effect!r} is not one of {', '.join(EFFECTS)}")
        if not route_ids and not stop_ids:
            raise ServiceAlertError("route_ids: [] and stop_ids: [] name nothing the alert affects")
        if not header_ja.strip():
            raise ServiceAlertError(f"header_ja: {header_ja!r} is empty")
        if known_routes is not None:
            for r in route_ids:
                if r not in known_routes:
                    raise ServiceAlertError(f"route_ids: {r!r} is not a route of the GTFS feed")
        if active_from and active_until and active_until <= active_from:
            raise ServiceAlertError(
                f"active_until: {active_until.isoformat()} is not after active_from"
            )
        row = {
            "created_at": now or datetime.now(UTC),
            "created_by": created_by,
            "active_from": active_from,
            "active_until": active_until,
            "cause": cause,
            "effect": effect,
            "route_ids": json.dumps(list(route_ids)),
            "stop_ids": json.dumps(list(stop_ids)),
            "header_ja": header_ja,
            "description_ja": description_ja,
            "header_en": header_en,
            "description_en": description_en,
            "url": url,
        }
        with self.engine.begin() as c:
            new_id = c.execute(insert(TABLE).values(**row)).inserted_primary_key[0]  # type: ignore[index]
        return self.get(int(new_id))  # type: ignore[return-value]

    def get(self, alert_id: int) -> ServiceAlert | None:
        with self.engine.connect() as c:
            row = c.execute(select(TABLE).where(TABLE.c.id == alert_id)).mappings().first()
        return None if row is None else _from_row(row)

    def all(self) -> list[ServiceAlert]:
        with self.engine.connect() as c:
            rows = c.execute(select(TABLE).order_by(TABLE.c.id)).mappings().all()
        return [_from_row(r) for r in rows]

    def delete(self, alert_id: int) -> bool:
        with self.engine.begin() as c:
            return c.execute(delete(TABLE).where(TABLE.c.id == alert_id)).rowcount > 0


def store_for(service: Any) -> ServiceAlertStore:
    """The service's alert store, made on first use (its table with it)."""
    store = getattr(service, "service_alerts", None)
    if store is None:
        store = service.service_alerts = ServiceAlertStore(service.engine)
    return store  # type: ignore[no-any-return]


def _from_row(r: object) -> ServiceAlert:
    m = dict(r)  # type: ignore[call-overload]
    return ServiceAlert(
        id=m["id"],
        created_at=_aware(m["created_at"]),  # type: ignore[arg-type]
        created_by=m["created_by"],
        active_from=_aware(m["active_from"]),
        active_until=_aware(m["active_until"]),
        cause=m["cause"],
        effect=m["effect"],
        route_ids=tuple(json.loads(m["route_ids"])),
        stop_ids=tuple(json.loads(m["stop_ids"])),
        header_ja=m["header_ja"],
        description_ja=m["description_ja"],
        header_en=m["header_en"],
        description_en=m["description_en"],
        url=m["url"],
    )


def _text(ts: rt.TranslatedString, ja: str, en: str | None) -> None:
    t = ts.translation.add()
    t.text, t.language = ja, "ja"
    if en:
        t = ts.translation.add()
        t.text, t.language = en, "en"


def _periods(alert: rt.Alert) -> list[rt.TimeRange]:
    """``active_period`` is deprecated: when to show an alert and when it bites are
    ``communication_period`` and ``impact_period`` (the same here: staff give one
    span); bindings older than these fields get ``active_period``."""
    names = alert.DESCRIPTOR.fields_by_name
    if "communication_period" in names and "impact_period" in names:
        return [alert.communication_period.add(), alert.impact_period.add()]
    return [alert.active_period.add()]


def build_service_alerts(alerts: Sequence[ServiceAlert], *, now: datetime) -> rt.FeedMessage:
    """A FULL_DATASET ServiceAlerts feed of the alerts not over at ``now``."""
    feed = new_feed(now)
    for a in alerts:
        if a.active_until is not None and a.active_until <= now:
            continue
        entity = feed.entity.add()
        entity.id = f"alert-{a.id}"
        alert = entity.alert
        if a.active_from or a.active_until:
            for period in _periods(alert):
                if a.active_from:
                    period.start = int(a.active_from.timestamp())
                if a.active_until:
                    period.end = int(a.active_until.timestamp())
        for r in a.route_ids:
            alert.informed_entity.add().route_id = r
        for s in a.stop_ids:
            alert.informed_entity.add().stop_id = s
        alert.cause = rt.Alert.Cause.Value(a.cause)
        alert.effect = rt.Alert.Effect.Value(a.effect)
        _text(alert.header_text, a.header_ja, a.header_en)
        _text(alert.description_text, a.description_ja or a.header_ja, a.description_en)
        if a.url:
            _text(alert.url, a.url, None)
    return feed
