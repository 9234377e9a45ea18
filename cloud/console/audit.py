"""The console's own audit events (sign-in, sign-out, lockouts, users, tokens).

Alert, maintenance and report actions are recorded by their managers in their own
trails, with the person's user name as the actor; these rows cover the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.console import ConsoleEventRow


@dataclass(frozen=True, slots=True)
class ConsoleEvent:
    at: datetime
    actor: str
    action: str
    target: str | None
    note: str | None


def record(
    s: Session, *, actor: str, action: str, target: str | None = None, note: str | None = None
) -> None:
    """Add an event inside the caller's transaction (it commits with the change)."""
    s.add(
        ConsoleEventRow(at=datetime.now(UTC), actor=actor, action=action, target=target, note=note)
    )


def add_event(
    sm: sessionmaker[Session],
    *,
    actor: str,
    action: str,
    target: str | None = None,
    note: str | None = None,
) -> None:
    with sm() as s, s.begin():
        record(s, actor=actor, action=action, target=target, note=note)


def recent_events(sm: sessionmaker[Session], limit: int = 50) -> list[ConsoleEvent]:
    stmt = select(ConsoleEventRow).order_by(ConsoleEventRow.id.desc()).limit(limit)
    with sm() as s:
        return [ConsoleEvent(r.at, r.actor, r.action, r.target, r.note) for r in s.scalars(stmt)]
