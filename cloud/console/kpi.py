"""The one-week on-site confirmation KPI per month and per department, and which open
reports are at risk of missing it.

Months use :func:`cloud.citizen.reports.confirmation_stats` itself (one call per month);
departments need a grouping that function does not offer, so :func:`by_department`
applies the same cohort rule (documented there) per department.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.citizen.reports import CONFIRM_WINDOW, JST, confirmation_stats
from cloud.db.citizen import ReportRow

AT_RISK_BEFORE = timedelta(days=2)  # highlighted when less than this is left
OPEN_STATUSES = ("received", "triaged", "in_progress")


def risk(
    created_at: datetime, confirmed_at: datetime | None, status: str, now: datetime
) -> str | None:
    """'overdue', 'at_risk' or None for one report."""
    if confirmed_at is not None or status in ("rejected", "closed"):
        return None
    left = created_at + CONFIRM_WINDOW - now
    if left <= timedelta(0):
        return "overdue"
    return "at_risk" if left <= AT_RISK_BEFORE else None


def _month_start(d: datetime) -> datetime:
    local = d.astimezone(JST)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(m: datetime) -> datetime:
    return m.replace(year=m.year + 1, month=1) if m.month == 12 else m.replace(month=m.month + 1)


def by_month(
    sm: sessionmaker[Session], months: int = 6, now: datetime | None = None
) -> list[dict[str, Any]]:
    now = now or datetime.now(UTC)
    start = _month_start(now)
    for _ in range(months - 1):
        start = (start - timedelta(days=1)).replace(day=1)
    out = []
    m = start
    while m <= now:
        stats = confirmation_stats(sm, now=now, since=m, until=_next_month(m))
        out.append({"month": f"{m.year}年{m.month}月", **stats})
        m = _next_month(m)
    return out


@dataclass
class DeptKpi:
    department: str
    eligible: int = 0
    confirmed_within_week: int = 0
    pending: int = 0
    at_risk: int = 0
    overdue: int = 0

    @property
    def rate(self) -> float | None:
        return self.confirmed_within_week / self.eligible if self.eligible else None


def by_department(sm: sessionmaker[Session], now: datetime | None = None) -> list[DeptKpi]:
    """Cohort as in confirmation_stats: rejected-and-never-confirmed left out; a report is
    eligible once its week has ended or it is confirmed, else pending."""
    now = now or datetime.now(UTC)
    q = select(ReportRow.department, ReportRow.status, ReportRow.created_at, ReportRow.confirmed_at)
    out: dict[str, DeptKpi] = {}
    with sm() as s:
        rows = s.execute(q).all()
    for dept, status, created, confirmed in rows:
        k = out.setdefault(dept or "未割当", DeptKpi(dept or "未割当"))
        if confirmed is None and status == "rejected":
            continue
        if confirmed is None and now - created < CONFIRM_WINDOW:
            k.pending += 1
        else:
            k.eligible += 1
            if confirmed is not None and confirmed - created <= CONFIRM_WINDOW:
                k.confirmed_within_week += 1
        flag = risk(created, confirmed, status, now)
        if flag == "at_risk":
            k.at_risk += 1
        elif flag == "overdue":
            k.overdue += 1
    return sorted(out.values(), key=lambda k: k.department)
