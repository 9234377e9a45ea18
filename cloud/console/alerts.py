"""Alert list filters for the console (state, kind, severity, site, time), read-only.

Acknowledging and resolving go through :class:`cloud.alerts.AlertManager`, as in the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.models import AlertRow

PAGE = 50


@dataclass(frozen=True)
class AlertFilter:
    state: str | None = None
    kind: str | None = None
    severity: str | None = None
    site: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def find_alerts(
    sm: sessionmaker[Session], f: AlertFilter, *, page: int = 0
) -> tuple[list[AlertRow], int]:
    """One page of matching alerts, newest first, and how many match in all."""
    stmt = select(AlertRow)
    if f.state:
        stmt = stmt.where(AlertRow.state == f.state)
    if f.kind:
        stmt = stmt.where(AlertRow.kind == f.kind)
    if f.severity:
        stmt = stmt.where(AlertRow.severity == f.severity)
    if f.site:
        stmt = stmt.where(AlertRow.site.contains(f.site, autoescape=True))
    if f.since:
        stmt = stmt.where(AlertRow.started_at >= f.since)
    if f.until:
        stmt = stmt.where(AlertRow.started_at < f.until)
    with sm() as s:
        total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = s.scalars(
            stmt.order_by(AlertRow.started_at.desc(), AlertRow.id).limit(PAGE).offset(page * PAGE)
        ).all()
    return list(rows), total


def alert_kinds(sm: sessionmaker[Session]) -> list[str]:
    with sm() as s:
        return sorted(k for (k,) in s.execute(select(AlertRow.kind).distinct()))
