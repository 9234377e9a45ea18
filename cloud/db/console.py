"""Staff console tables: people who sign in, their server-side sessions, failed sign-ins
and the console's own audit events.

Passwords are stored only as Argon2id hashes. A session row is looked up by the SHA-256
of the cookie's secret, so a leaked database copy holds no usable cookie. Failed sign-ins
are rows (not a counter in memory) so that a lockout holds across restarts and across
processes sharing the database.

Actions on alerts, maintenance windows and reports go to their own audit trails (the
actor is the person's user name); :class:`ConsoleEventRow` records what has no trail of
its own: sign-in, sign-out, lockouts, user and token management.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Engine, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.base import Base


class StaffUserRow(Base):
    __tablename__ = "console_users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80), unique=True, doc="sign-in name; audit actor")
    display_name: Mapped[str] = mapped_column(String(80), default="")
    role: Mapped[str] = mapped_column(String(16), doc="viewer, operator or admin")
    password_hash: Mapped[str] = mapped_column(String(200), doc="Argon2id, PHC string")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    password_changed_at: Mapped[datetime]
    locked_until: Mapped[datetime | None] = mapped_column(default=None)


class StaffSessionRow(Base):
    __tablename__ = "console_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, doc="SHA-256 of the cookie")
    user_id: Mapped[int] = mapped_column(ForeignKey("console_users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64), doc="sent back in every form")
    created_at: Mapped[datetime]
    last_seen: Mapped[datetime] = mapped_column(doc="idle timeout runs from here")


class LoginFailureRow(Base):
    __tablename__ = "console_login_failures"
    __table_args__ = (Index("ix_console_login_failures_user_at", "user_name", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_name: Mapped[str] = mapped_column(String(80), doc="as typed (may be no user at all)")
    at: Mapped[datetime]


class ConsoleEventRow(Base):
    __tablename__ = "console_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(80), doc="user name, or 'cli' / 'system'")
    action: Mapped[str] = mapped_column(String(40), doc="sign_in, sign_out, lockout, ...")
    target: Mapped[str | None] = mapped_column(String(120), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)


TABLES = (StaffUserRow, StaffSessionRow, LoginFailureRow, ConsoleEventRow)


def create_tables(engine: Engine) -> None:
    """Create the console tables if missing (a database made before the console)."""
    Base.metadata.create_all(engine, tables=[Base.metadata.tables[t.__tablename__] for t in TABLES])
