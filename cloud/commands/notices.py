"""Notices to call units: choosing the units, the fan-out (one command per unit, all
carrying the notice's id), the residents' "seen" presses, the per-notice summary and the
KPI (units with the notice function; notices received and seen per month).

A call unit "has the notice function" once it has confirmed a notice (a ``done`` result):
the cloud cannot know a unit's firmware otherwise, and a unit that never confirmed one
has not shown that residents can be reached through it.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from cloud.commands.geo import contains, polygons
from cloud.commands.service import CommandError, CommandService, Issue
from cloud.commands.states import CloudState
from cloud.db.commands import CommandRow, NoticeRow, NoticeSeenRow
from cloud.detect.callunit import WBGT_STAGES
from cloud.errors import CloudError
from schemas.commands import NOTICE_ACTION as SCHEMA_NOTICE_ACTION
from schemas.commands import NOTICE_TEXT_FORBIDDEN, NOTICE_TEXT_MAX, CommandPriority
from schemas.devices import CallUnitEvent
from schemas.wire import Batch, DeviceInfo

log = logging.getLogger(__name__)

NOTICE_ACTION = SCHEMA_NOTICE_ACTION
# what a call unit can show (schemas.commands); anything else the gateway would reject
NoticeKind = Literal["heat", "disaster"]
PRIORITY: dict[str, CommandPriority] = {
    "disaster": CommandPriority.LIFE_SAFETY,
    "heat": CommandPriority.HIGH,
}
_FORBIDDEN = re.compile(NOTICE_TEXT_FORBIDDEN)
_LINE_SAFE = {",": "、"}  # the line's field separator; the Japanese comma reads the same


def line_text(text: str) -> str:
    """``text`` as the AKCU line can carry it: separators and control characters replaced,
    at most NOTICE_TEXT_MAX characters (cut with an ellipsis). A notice is life-safety:
    a shortened one still goes out, and the log says so, rather than every unit
    rejecting it."""
    safe = _FORBIDDEN.sub(lambda m: _LINE_SAFE.get(m.group(), " "), text).strip()
    if len(safe) > NOTICE_TEXT_MAX:
        safe = safe[: NOTICE_TEXT_MAX - 1] + "…"
    if safe != text:
        log.warning("notice_text_adapted chars_in=%d chars_out=%d", len(text), len(safe))
    return safe or "お知らせ"


class NoticeNotFound(CloudError):
    """No notice with that id."""


@dataclass(frozen=True)
class Targets:
    """Which call units: the union of the lists given, or every unit (``all``)."""

    devices: Sequence[str] = ()
    districts: Sequence[str] = ()
    areas: Sequence[str] = ()
    polygon: dict[str, Any] | None = None
    all: bool = False

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"all": self.all}
        for name in ("devices", "districts", "areas"):
            if getattr(self, name):
                out[name] = list(getattr(self, name))
        if self.polygon is not None:
            out["polygon"] = self.polygon
        return out


@dataclass(frozen=True)
class NoticeRecord:
    id: str
    kind: str
    level: str | None
    text: str
    issuer: str
    created_at: datetime
    expires_at: datetime
    targets: dict[str, Any]
    targeted: int
    command_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NoticeSummary:
    notice_id: str
    targeted: int
    delivered: int  # the unit confirmed it (result done)
    seen: int  # the resident pressed "I have seen it"
    failed: int
    rejected: int
    expired: int
    cancelled: int
    pending: int  # queued, sent or accepted


def call_units(devices: Iterable[DeviceInfo]) -> list[DeviceInfo]:
    return [d for d in devices if d.kind.value == "call_unit"]


def choose(service: CommandService, targets: Targets) -> list[str]:
    """The call units the targets name, in the registry, sorted. An unknown or non-call-unit
    device in ``devices`` is refused naming it (a notice to a pump makes no sense)."""
    registry = service.registry
    units = {d.device_id: d for d in call_units(registry.devices().values())}
    chosen: set[str] = set()
    for i, device_id in enumerate(targets.devices):
        if device_id not in units:
            raise CommandError(
                f"targets.devices[{i}]: {device_id!r} is not a call unit in the registry",
                field=f"targets.devices.{i}",
                value=device_id,
            )
        chosen.add(device_id)
    wanted_districts, wanted_areas = set(targets.districts), set(targets.areas)
    polys = polygons(targets.polygon) if targets.polygon is not None else None
    for d in units.values():
        if (
            targets.all
            or (d.district is not None and d.district in wanted_districts)
            or (d.area is not None and d.area in wanted_areas)
            or (
                polys is not None
                and d.lat is not None
                and d.lon is not None
                and contains(polys, d.lon, d.lat)
            )
        ):
            chosen.add(d.device_id)
    return sorted(chosen)


def wire_level(level: str) -> int | None:
    """The notice's level as the AKCU line carries it (an integer 0..9, edge/actions.py):
    a WBGT stage is its rank (警戒 1, 厳重警戒 2, 危険 3), a digit itself; else None (the
    command goes without one and the unit shows level 0)."""
    if level in WBGT_STAGES:
        return WBGT_STAGES.index(level) + 1
    return int(level) if len(level) == 1 and level.isdigit() else None


def send_notice(
    service: CommandService,
    *,
    kind: NoticeKind,
    text: str,
    targets: Targets,
    issuer: str,
    level: str | None = None,
    ttl_s: float | None = None,
    rule_id: str | None = None,
    only: Sequence[str] | None = None,
) -> NoticeRecord:
    """One notice, one command per chosen unit (``only``: these units, already chosen).
    Units without an owning gateway cannot be addressed: counted out and logged."""
    if kind not in PRIORITY:  # a kind no call unit can show would be rejected by each one
        raise CommandError(f"kind: {kind!r} is not a notice kind ({', '.join(PRIORITY)})")
    units = list(only) if only is not None else choose(service, targets)
    addressable = [u for u in units if service.registry.gateway_of(u) is not None]
    if len(addressable) < len(units):
        log.warning(
            "notice_units_without_gateway count=%d issuer=%s", len(units) - len(addressable), issuer
        )
    now = service.clock()
    ttl = ttl_s if ttl_s is not None else service.settings.notice_ttl_s
    notice_id = str(uuid.uuid4())
    text = line_text(text)
    params: dict[str, Any] = {"notice_id": notice_id, "kind": kind, "text": text}
    if level and wire_level(level) is not None:
        params["level"] = wire_level(level)
    # the notice row first: the summary counts against it even while commands are stored
    with service.sessionmaker() as s, s.begin():
        s.add(
            NoticeRow(
                id=notice_id,
                kind=kind,
                level=level,
                text=text,
                issuer=issuer,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl),
                targets=targets.describe(),
                targeted=len(addressable),
            )
        )
    issues = [
        Issue(u, NOTICE_ACTION, params, issuer, PRIORITY[kind], ttl, notice_id, rule_id)
        for u in addressable
    ]
    records = service.issue_many(issues) if issues else []
    log.info("notice_sent id=%s kind=%s units=%d issuer=%s", notice_id, kind, len(issues), issuer)
    return NoticeRecord(
        notice_id,
        kind,
        level,
        text,
        issuer,
        now,
        now + timedelta(seconds=ttl),
        targets.describe(),
        len(addressable),
        [r.id for r in records],
    )


def record_seen(
    service: CommandService,
    batch: Batch,
    on_new: Callable[[str, str, datetime], None] | None = None,
) -> int:
    """Store the ``notice_seen`` events of a batch (the ingest has already refused those of
    devices the gateway does not own). Only for a notice sent to that unit; a repeat of
    the same press counts once. ``on_new(notice_id, device_id, ts)`` for each new one
    (the dashboard's KPI point). Returns how many were new."""
    seen: list[tuple[str, str, datetime]] = []
    for reading in batch.readings:
        values = getattr(reading, "values", None)
        notice_id = getattr(values, "notice_id", None)
        if getattr(values, "event", None) == CallUnitEvent.NOTICE_SEEN and notice_id:
            seen.append((notice_id, reading.device_id, reading.ts))
    new = 0
    for notice_id, device_id, ts in seen:
        with service.sessionmaker() as s:
            sent = s.scalar(
                select(func.count())
                .select_from(CommandRow)
                .where(CommandRow.notice_id == notice_id, CommandRow.device_id == device_id)
            )
        if not sent:
            log.info("notice_seen_unknown notice=%s device=%s", notice_id, device_id)
            continue
        try:
            with service.sessionmaker.begin() as s:
                s.add(NoticeSeenRow(notice_id=notice_id, device_id=device_id, seen_at=ts))
            new += 1
        except IntegrityError:
            continue  # the same press again (a re-sent batch)
        if on_new is not None:
            on_new(notice_id, device_id, ts)
    return new


def get_notice(service: CommandService, notice_id: str) -> NoticeRecord:
    with service.sessionmaker() as s:
        row = s.get(NoticeRow, notice_id)
        if row is None:
            raise NoticeNotFound(f"notice {notice_id!r} not found")
        return NoticeRecord(
            row.id,
            row.kind,
            row.level,
            row.text,
            row.issuer,
            row.created_at,
            row.expires_at,
            dict(row.targets),
            row.targeted,
        )


def list_notices(service: CommandService, limit: int = 100, offset: int = 0) -> list[NoticeRecord]:
    with service.sessionmaker() as s:
        stmt = (
            select(NoticeRow.id).order_by(NoticeRow.created_at.desc()).limit(limit).offset(offset)
        )
        ids = list(s.scalars(stmt))
    return [get_notice(service, i) for i in ids]


def summary(service: CommandService, notice_id: str) -> NoticeSummary:
    notice = get_notice(service, notice_id)
    with service.sessionmaker() as s:
        states = Counter(
            s.scalars(select(CommandRow.state).where(CommandRow.notice_id == notice_id))
        )
        seen = s.scalar(
            select(func.count())
            .select_from(NoticeSeenRow)
            .where(NoticeSeenRow.notice_id == notice_id)
        )
    pending = sum(
        states[st.value] for st in (CloudState.QUEUED, CloudState.SENT, CloudState.ACCEPTED)
    )
    return NoticeSummary(
        notice_id=notice_id,
        targeted=notice.targeted,
        delivered=states[CloudState.DONE.value],
        seen=int(seen or 0),
        failed=states[CloudState.FAILED.value],
        rejected=states[CloudState.REJECTED.value],
        expired=states[CloudState.EXPIRED.value],
        cancelled=states[CloudState.CANCELLED.value],
        pending=pending,
    )


@dataclass(frozen=True)
class MonthKpi:
    month: str  # YYYY-MM in the service's time zone
    units_reached: int  # units that confirmed at least one notice that month
    notices_received: int  # notices confirmed by units (result done)
    notices_seen: int  # "I have seen it" presses


@dataclass(frozen=True)
class Kpi:
    call_units: int  # call units in the registry
    units_with_notice_function: int  # of those, ever confirmed a notice
    months: list[MonthKpi]


def kpi(service: CommandService) -> Kpi:
    """The plan's KPI from the relational store (see the module docstring)."""
    zone = ZoneInfo(service.settings.timezone)
    units = {d.device_id for d in call_units(service.registry.devices().values())}
    with service.sessionmaker() as s:
        done = s.execute(
            select(CommandRow.device_id, CommandRow.final_at).where(
                CommandRow.action == NOTICE_ACTION,
                CommandRow.state == CloudState.DONE.value,
                CommandRow.notice_id.is_not(None),
            )
        ).all()
        seen = list(s.scalars(select(NoticeSeenRow.seen_at)))
    received: Counter[str] = Counter()
    reached: dict[str, set[str]] = {}
    for device_id, at in done:
        if at is None:
            continue
        month = at.astimezone(zone).strftime("%Y-%m")
        received[month] += 1
        reached.setdefault(month, set()).add(device_id)
    seen_by: Counter[str] = Counter(at.astimezone(zone).strftime("%Y-%m") for at in seen)
    months = sorted(set(received) | set(seen_by))
    return Kpi(
        call_units=len(units),
        units_with_notice_function=len(units & {d for d, _ in done}),
        months=[MonthKpi(m, len(reached.get(m, ())), received[m], seen_by[m]) for m in months],
    )
