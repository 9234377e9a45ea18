"""Tables of the command service (:mod:`cloud.commands`): the commands, every state
change of each (the audit trail), notices, residents' "seen" presses, device holds,
automatic-action switches and the audit of everything that is not one command."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloud.db.base import Base


class CommandRow(Base):
    """One command to one device. ``gateway_id`` is the device's owner when the command
    was addressed (the registry's, never a gateway's word)."""

    __tablename__ = "commands"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, doc="UUID, as on the wire")
    gateway_id: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict] = mapped_column(JSON, default=dict)  # type: ignore[type-arg]
    priority: Mapped[str] = mapped_column(String(16))
    issuer: Mapped[str] = mapped_column(String(80), index=True)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    state: Mapped[str] = mapped_column(String(12), index=True)
    reason: Mapped[str | None] = mapped_column(String(500))
    readback: Mapped[dict | None] = mapped_column(JSON)  # type: ignore[type-arg]
    attempts: Mapped[int] = mapped_column(Integer, default=0, doc="Publications (same id)")
    last_sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    final_at: Mapped[datetime | None]
    final_source: Mapped[str | None] = mapped_column(String(8), doc="gateway, cloud or staff")
    notice_id: Mapped[str | None] = mapped_column(String(36), index=True)
    rule_id: Mapped[str | None] = mapped_column(String(40), index=True)
    events: Mapped[list[CommandEventRow]] = relationship(
        back_populates="command", order_by="CommandEventRow.id", lazy="selectin"
    )

    __table_args__ = (Index("ix_commands_gateway_state", "gateway_id", "state"),)


class CommandEventRow(Base):
    """One state change (or refused result) of one command: who, when, why."""

    __tablename__ = "command_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    command_id: Mapped[str] = mapped_column(ForeignKey("commands.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(80), doc="issuer, gateway:<id>, cloud")
    action: Mapped[str] = mapped_column(String(24), doc="issue, publish, result, cancel, ...")
    from_state: Mapped[str | None] = mapped_column(String(12))
    to_state: Mapped[str | None] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(500))
    readback: Mapped[dict | None] = mapped_column(JSON)  # type: ignore[type-arg]
    command: Mapped[CommandRow] = relationship(back_populates="events")


class NoticeRow(Base):
    """A notice to call units; one command per unit carries its id."""

    __tablename__ = "notices"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), doc="heat, disaster or info")
    level: Mapped[str | None] = mapped_column(String(24))
    text: Mapped[str] = mapped_column(Text)
    issuer: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(index=True)
    expires_at: Mapped[datetime]
    targets: Mapped[dict] = mapped_column(JSON, doc="How the units were chosen")  # type: ignore[type-arg]
    targeted: Mapped[int] = mapped_column(Integer, default=0)


class NoticeSeenRow(Base):
    """A resident pressed "I have seen it" for a notice (the call unit's notice_seen)."""

    __tablename__ = "notice_seen"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notice_id: Mapped[str] = mapped_column(String(36), index=True)
    device_id: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("notice_id", "device_id", name="uq_notice_seen_unit"),)


class DeviceHoldRow(Base):
    """A staff command holds its device: no automatic action touches it until then."""

    __tablename__ = "command_holds"
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    held_until: Mapped[datetime]
    held_by: Mapped[str] = mapped_column(String(80))
    command_id: Mapped[str] = mapped_column(String(36))


class RuleSwitchRow(Base):
    """Armed state of one automatic-action rule, or (``rule_id`` ``*``) the kill switch
    (``armed`` False = engaged: every rule disarmed)."""

    __tablename__ = "command_rule_switches"
    rule_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    armed: Mapped[bool] = mapped_column(Boolean)
    changed_by: Mapped[str] = mapped_column(String(80))
    changed_at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(String(500))


class CommandAuditRow(Base):
    """What is not a state change of one command: a rule fired or held back, a switch
    thrown, a result refused for a command it cannot belong to."""

    __tablename__ = "command_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(80))
    note: Mapped[str | None] = mapped_column(String(500))
