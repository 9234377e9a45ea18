"""Server-side sessions in the relational store.

The cookie holds 32 random bytes; the row is found by their SHA-256, so the table alone
opens no session. A session ends when unused for ``idle_timeout_s``, ``max_session_s``
after sign-in, at sign-out, and when the account is disabled or its password changed.
Each session carries its own CSRF token, sent back in every form.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from cloud.console.config import ConsoleSettings
from cloud.console.users import StaffUser, get_user
from cloud.db.console import LoginFailureRow, StaffSessionRow, StaffUserRow

# a last_seen write per request would serialise every page on the database; this is
# far below any idle timeout, so the timeout is still honoured to within a minute
_TOUCH_EVERY = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class StaffSession:
    id: int
    user: StaffUser
    csrf_token: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def start_session(sm: sessionmaker[Session], user_id: int) -> str:
    """A new session; returns the cookie's secret (never stored in clear)."""
    secret = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with sm() as s, s.begin():
        s.add(
            StaffSessionRow(
                token_hash=_hash(secret),
                user_id=user_id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                last_seen=now,
            )
        )
    return secret


def find_session(
    sm: sessionmaker[Session], secret: str, settings: ConsoleSettings, *, touch: bool = True
) -> StaffSession | None:
    """The live session of this cookie secret, touched (unless ``touch`` is False: a
    page's own background refresh is not a person using it); None if unknown, idle too
    long, too old, or its user is disabled (an ended session's row is deleted)."""
    if not secret or len(secret) > 100:
        return None
    now = datetime.now(UTC)
    with sm() as s, s.begin():
        row = s.query(StaffSessionRow).filter_by(token_hash=_hash(secret)).first()
        if row is None:
            return None
        user = s.get(StaffUserRow, row.user_id)
        idle = now - row.last_seen > timedelta(seconds=settings.idle_timeout_s)
        old = now - row.created_at > timedelta(seconds=settings.max_session_s)
        if user is None or user.disabled or idle or old:
            s.delete(row)
            return None
        if touch and now - row.last_seen > min(
            _TOUCH_EVERY, timedelta(seconds=settings.idle_timeout_s / 4)
        ):
            row.last_seen = now
        session_id, csrf, user_id = row.id, row.csrf_token, row.user_id
    info = get_user(sm, user_id)
    return StaffSession(session_id, info, csrf) if info is not None else None


def end_session(sm: sessionmaker[Session], session_id: int) -> None:
    with sm() as s, s.begin():
        s.execute(delete(StaffSessionRow).where(StaffSessionRow.id == session_id))


def end_all_sessions(s: Session, user_id: int) -> None:
    s.execute(delete(StaffSessionRow).where(StaffSessionRow.user_id == user_id))


def prune(sm: sessionmaker[Session], settings: ConsoleSettings) -> None:
    """Delete idle sessions and failure rows older than a day (names that are no user)."""
    now = datetime.now(UTC)
    with sm() as s, s.begin():
        s.execute(
            delete(StaffSessionRow).where(
                StaffSessionRow.last_seen < now - timedelta(seconds=settings.idle_timeout_s)
            )
        )
        s.execute(delete(LoginFailureRow).where(LoginFailureRow.at < now - timedelta(days=1)))
