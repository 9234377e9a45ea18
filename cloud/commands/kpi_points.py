"""The notice KPI as points in the time-series store, for the Call units dashboard.

Grafana reads InfluxDB only, and the KPI's facts are not all there otherwise: a unit's
receipt of a notice arrives as a command result (``cmd/result``), never as telemetry. A
"seen" press is telemetry (``raw.call_unit``, event ``notice_seen``), but counting it
there would count a resident's second press and presses for notices never sent to that
unit, which :func:`cloud.commands.notices.kpi` does not. So the command service writes
one point per fact at the moment the relational store accepts it, with the same rules
as the API:

- ``fact=received``: a notice command reached ``done`` (timestamp = the result's time,
  the API's ``final_at``);
- ``fact=seen``: a new ``notice_seen`` row (timestamp = the press).

Measurement ``notice`` (raw retention, like ``alert``). Tags: ``fact``, ``month``
(``YYYY-MM`` in the service's time zone: InfluxQL cannot group by calendar month, and
the API's months are local), ``device``, ``gateway``, ``district``, ``site``, ``kind``.
Fields: ``notice_id``, ``unit`` (the device again: ``count(distinct())`` works on
fields only) and ``received``/``seen``: the unit's count of that fact in that month so
far, from the relational store. A running count rather than 1 because a point is keyed
by its tags and time: two facts of one unit in the same millisecond (one press
answering two notices) would store as one point and a count of points would lose one;
the unit's ``max()`` per month is exact whichever point survives or arrives last.
"""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.commands.records import CommandRecord
from cloud.commands.states import CloudState
from cloud.db.commands import CommandRow, NoticeSeenRow
from cloud.errors import StoreError
from cloud.metrics import Metrics
from cloud.registry import Registry
from cloud.store.base import FieldValue, Point, TimeSeriesStore

log = logging.getLogger(__name__)

MEASUREMENT = "notice"
RECEIVED = "received"
SEEN = "seen"


def month_of(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m")


class KpiPoints:
    """Writes the facts; never raises into the result or batch path (a store outage
    loses the dashboard's copy of a fact, logged and counted; the API's stays)."""

    def __init__(
        self,
        store: TimeSeriesStore,
        sm: sessionmaker[Session],
        registry: Registry,
        timezone: str,
        metrics: Metrics,
    ) -> None:
        self._store, self._sm, self._registry, self._metrics = store, sm, registry, metrics
        self._zone = ZoneInfo(timezone)
        metrics.counter("akita_notice_kpi_points_failed_total", "KPI points not written")

    def point(
        self, fact: str, notice_id: str, device_id: str, at: datetime, also: int = 0
    ) -> Point:
        """``also``: this fact, when its own row is not committed yet (see on_result)."""
        month = month_of(at, self._zone)
        info = self._registry.devices().get(device_id)
        tags = {"fact": fact, "month": month, "device": device_id,
                "kind": "call_unit", "gateway": self._registry.gateway_of(device_id) or "",
                "district": (info.district if info else None) or "",
                "site": (info.site if info else None) or ""}  # fmt: skip
        so_far = self._count(fact, device_id, month, notice_id if also else None) + also
        fields: dict[str, FieldValue] = {"notice_id": notice_id, "unit": device_id, fact: so_far}
        return Point(MEASUREMENT, {k: v for k, v in tags.items() if v}, fields, at)

    def _count(self, fact: str, device_id: str, month: str, leave_out: str | None) -> int:
        """The unit's facts of ``month`` in the relational store (the API's rules), but
        the notice ``leave_out``."""
        with self._sm() as s:
            if fact == RECEIVED:
                times = s.scalars(
                    select(CommandRow.final_at).where(
                        CommandRow.device_id == device_id,
                        CommandRow.action == "notice",
                        CommandRow.state == CloudState.DONE.value,
                        CommandRow.notice_id.is_not(None),
                        CommandRow.notice_id != (leave_out or ""),
                    )
                )
            else:
                times = s.scalars(
                    select(NoticeSeenRow.seen_at).where(NoticeSeenRow.device_id == device_id)
                )
            return sum(1 for t in times if t is not None and month_of(t, self._zone) == month)

    def on_result(self, record: CommandRecord) -> None:
        """A command service result listener: a notice confirmed by its unit."""
        if record.notice_id is None or record.state != CloudState.DONE:
            return
        if record.final_at is None:
            return
        # called inside the result's transaction (commits after the listeners), so its
        # own row is not visible here yet: counted as ``also``. Results are applied one
        # at a time (the service's lock), so the previous one is committed.
        point = self.point(RECEIVED, record.notice_id, record.device_id, record.final_at, 1)
        self._write(point)

    def on_seen(self, notice_id: str, device_id: str, at: datetime) -> None:
        """A resident's press, once :func:`record_seen` has stored it as new."""
        self._write(self.point(SEEN, notice_id, device_id, at))

    def _write(self, point: Point) -> None:
        try:
            self._store.write([point])
        except StoreError as exc:
            self._metrics.inc("akita_notice_kpi_points_failed_total", fact=point.tags["fact"])
            log.warning(
                "notice_kpi_point_not_written fact=%s device=%s reason=%s",
                point.tags["fact"],
                point.tags["device"],
                exc,
            )
