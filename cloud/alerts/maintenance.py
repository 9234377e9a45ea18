"""Maintenance windows: while one is in force, a site's (or a device's) alerts stay silent.

Windows are rows of ``maintenance_windows`` with who created, changed or cancelled
them and when. A cancelled window is kept for the audit trail and has no effect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.errors import AlertError, AlertNotFound
from cloud.db.models import MaintenanceWindowRow

log = logging.getLogger(__name__)


class InvalidMaintenanceWindow(AlertError):
    """A window that makes no sense (no scope, or an end before its start)."""


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
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

    def in_force(self, now: datetime) -> bool:
        return self.cancelled_at is None and self.starts_at <= now < self.ends_at

    @classmethod
    def of(cls, row: MaintenanceWindowRow) -> MaintenanceWindow:
        return cls(
            id=row.id,
            site=row.site,
            device_id=row.device_id,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            reason=row.reason,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_by=row.updated_by,
            updated_at=row.updated_at,
            cancelled_by=row.cancelled_by,
            cancelled_at=row.cancelled_at,
        )


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _check(site: str | None, device_id: str | None, starts_at: datetime, ends_at: datetime) -> None:
    if not site and not device_id:
        raise InvalidMaintenanceWindow("a maintenance window needs a site or a device_id")
    if ends_at <= starts_at:
        raise InvalidMaintenanceWindow(
            f"ends_at {ends_at.isoformat()} is not after starts_at {starts_at.isoformat()}"
        )


def silencing_window(
    session: Session, *, device_id: str, site: str | None, now: datetime
) -> MaintenanceWindowRow | None:
    """The window in force for this device (or its site) at ``now``, if any."""
    scope = [MaintenanceWindowRow.device_id == device_id]
    if site:
        scope.append(
            (MaintenanceWindowRow.site == site) & (MaintenanceWindowRow.device_id.is_(None))
        )
    stmt = (
        select(MaintenanceWindowRow)
        .where(
            MaintenanceWindowRow.cancelled_at.is_(None),
            MaintenanceWindowRow.starts_at <= now,
            MaintenanceWindowRow.ends_at > now,
            or_(*scope),
        )
        .order_by(MaintenanceWindowRow.ends_at.desc())
        .limit(1)
    )
    row = session.scalars(stmt).first()
    if row is not None and row.device_id == device_id and row.site and site and row.site != site:
        return None  # a device window pinned to another site (the device moved)
    return row


class MaintenanceWindows:
    """Create, list, change and cancel maintenance windows."""

    def __init__(
        self, sessionmaker: sessionmaker[Session], *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self._sm = sessionmaker
        self._clock = clock

    def create(
        self,
        *,
        site: str | None,
        device_id: str | None,
        starts_at: datetime,
        ends_at: datetime,
        reason: str,
        actor: str,
    ) -> MaintenanceWindow:
        _check(site, device_id, starts_at, ends_at)
        with self._sm() as s, s.begin():
            row = MaintenanceWindowRow(
                site=site,
                device_id=device_id,
                starts_at=starts_at,
                ends_at=ends_at,
                reason=reason,
                created_by=actor,
                created_at=self._clock(),
            )
            s.add(row)
            s.flush()
            window = MaintenanceWindow.of(row)
        log.info(
            "maintenance_created id=%s site=%s device=%s start=%s end=%s actor=%s",
            window.id,
            site,
            device_id,
            starts_at.isoformat(),
            ends_at.isoformat(),
            actor,
        )
        return window

    def get(self, window_id: int) -> MaintenanceWindow:
        with self._sm() as s:
            row = s.get(MaintenanceWindowRow, window_id)
            if row is None:
                raise AlertNotFound(f"maintenance window {window_id} not found")
            return MaintenanceWindow.of(row)

    def list(
        self,
        *,
        site: str | None = None,
        device_id: str | None = None,
        include_cancelled: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> list[MaintenanceWindow]:
        stmt = select(MaintenanceWindowRow)
        if site is not None:
            stmt = stmt.where(MaintenanceWindowRow.site == site)
        if device_id is not None:
            stmt = stmt.where(MaintenanceWindowRow.device_id == device_id)
        if not include_cancelled:
            stmt = stmt.where(MaintenanceWindowRow.cancelled_at.is_(None))
        stmt = stmt.order_by(MaintenanceWindowRow.starts_at.desc(), MaintenanceWindowRow.id)
        with self._sm() as s:
            rows = s.scalars(stmt.limit(limit).offset(offset)).all()
            return [MaintenanceWindow.of(r) for r in rows]

    def update(
        self,
        window_id: int,
        *,
        actor: str,
        ends_at: datetime | None = None,
        starts_at: datetime | None = None,
        reason: str | None = None,
    ) -> MaintenanceWindow:
        with self._sm() as s, s.begin():
            row = s.get(MaintenanceWindowRow, window_id)
            if row is None:
                raise AlertNotFound(f"maintenance window {window_id} not found")
            if row.cancelled_at is not None:
                raise InvalidMaintenanceWindow(f"maintenance window {window_id} is cancelled")
            new_start = starts_at or row.starts_at
            new_end = ends_at or row.ends_at
            _check(row.site, row.device_id, new_start, new_end)
            row.starts_at, row.ends_at = new_start, new_end
            if reason is not None:
                row.reason = reason
            row.updated_by, row.updated_at = actor, self._clock()
            window = MaintenanceWindow.of(row)
        log.info("maintenance_updated id=%s actor=%s", window_id, actor)
        return window

    def cancel(self, window_id: int, *, actor: str) -> MaintenanceWindow:
        with self._sm() as s, s.begin():
            row = s.get(MaintenanceWindowRow, window_id)
            if row is None:
                raise AlertNotFound(f"maintenance window {window_id} not found")
            if row.cancelled_at is None:
                row.cancelled_by, row.cancelled_at = actor, self._clock()
            window = MaintenanceWindow.of(row)
        log.info("maintenance_cancelled id=%s actor=%s", window_id, actor)
        return window
