"""What the command service hands out: plain frozen records of the stored rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloud.commands.states import CloudState
from cloud.db.commands import CommandEventRow, CommandRow


@dataclass(frozen=True)
class CommandEvent:
    at: datetime
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    reason: str | None
    readback: dict[str, Any] | None


@dataclass(frozen=True)
class CommandRecord:
    id: str
    gateway_id: str
    device_id: str
    action: str
    params: dict[str, Any]
    priority: str
    issuer: str
    issued_at: datetime
    expires_at: datetime
    state: CloudState
    reason: str | None
    readback: dict[str, Any] | None
    attempts: int
    last_sent_at: datetime | None
    updated_at: datetime
    final_at: datetime | None
    final_source: str | None
    notice_id: str | None
    rule_id: str | None


def event_of(row: CommandEventRow) -> CommandEvent:
    return CommandEvent(
        at=row.at,
        actor=row.actor,
        action=row.action,
        from_state=row.from_state,
        to_state=row.to_state,
        reason=row.reason,
        readback=dict(row.readback) if row.readback else None,
    )


def record_of(row: CommandRow) -> CommandRecord:
    return CommandRecord(
        id=row.id,
        gateway_id=row.gateway_id,
        device_id=row.device_id,
        action=row.action,
        params=dict(row.params or {}),
        priority=row.priority,
        issuer=row.issuer,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        state=CloudState(row.state),
        reason=row.reason,
        readback=dict(row.readback) if row.readback else None,
        attempts=row.attempts,
        last_sent_at=row.last_sent_at,
        updated_at=row.updated_at,
        final_at=row.final_at,
        final_source=row.final_source,
        notice_id=row.notice_id,
        rule_id=row.rule_id,
    )
