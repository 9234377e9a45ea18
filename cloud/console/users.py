"""Staff accounts: add, change password, disable, and check a sign-in with lockout.

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106 low-memory profile);
a hash made with older parameters is upgraded at the next successful sign-in. A wrong
password adds a :class:`LoginFailureRow`; ``max_failures`` of them in a row lock the
account for ``lockout_s`` (the rows are cleared then, and on success).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud.api.auth import NAME_PATTERN, Role
from cloud.console.audit import record
from cloud.console.config import ConsoleSettings
from cloud.db.console import LoginFailureRow, StaffUserRow
from cloud.errors import CloudError

log = logging.getLogger(__name__)

_NAME = re.compile(NAME_PATTERN)
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
_hasher = PasswordHasher()
# verified against when the name is unknown, so a wrong name costs as long as a wrong password
_DUMMY_HASH = _hasher.hash("no such user: constant-time padding")


class UserError(CloudError):
    """A user cannot be added or changed; the message names the field and the value."""


@dataclass(frozen=True, slots=True)
class StaffUser:
    id: int
    name: str
    display_name: str
    role: Role
    disabled: bool
    created_at: datetime
    locked_until: datetime | None


@dataclass(frozen=True, slots=True)
class SignIn:
    """Outcome of a sign-in: ``user`` when it succeeded, else ``locked_until`` if locked."""

    user: StaffUser | None
    locked_until: datetime | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _info(row: StaffUserRow) -> StaffUser:
    return StaffUser(
        id=row.id,
        name=row.name,
        display_name=row.display_name or row.name,
        role=Role(row.role),
        disabled=row.disabled,
        created_at=row.created_at,
        locked_until=row.locked_until,
    )


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UserError(f"user name {name!r} must match {NAME_PATTERN}")
    return name


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise UserError(f"role {role!r} is not one of {', '.join(r.value for r in Role)}") from None


def check_password(password: str) -> str:
    # length is what matters against guessing (NIST SP 800-63B); no composition rules
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(
            f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters (it has {len(password)})"
        )
    return password


def add_user(
    sm: sessionmaker[Session],
    *,
    name: str,
    role: str,
    password: str,
    display_name: str = "",
    actor: str,
) -> StaffUser:
    check_name(name)
    checked_role = check_role(role)
    check_password(password)
    if len(display_name) > 80:
        raise UserError(f"display name {display_name[:20]!r}... is over 80 characters")
    now = _now()
    try:
        with sm() as s, s.begin():
            row = StaffUserRow(
                name=name,
                display_name=display_name,
                role=checked_role.value,
                password_hash=_hasher.hash(password),
                disabled=False,
                created_at=now,
                password_changed_at=now,
            )
            s.add(row)
            s.flush()
            user = _info(row)
            record(s, actor=actor, action="user_add", target=name, note=checked_role.value)
    except IntegrityError as exc:
        raise UserError(f"a user named {name!r} already exists") from exc
    log.info("console_user_added name=%s role=%s actor=%s", name, checked_role.value, actor)
    return user


def _row(s: Session, name: str) -> StaffUserRow:
    row = s.scalars(select(StaffUserRow).where(StaffUserRow.name == name)).first()
    if row is None:
        raise UserError(f"user {name!r} not found")
    return row


def set_password(sm: sessionmaker[Session], name: str, password: str, *, actor: str) -> None:
    """Change the password; every session of the user ends and any lock is lifted."""
    from cloud.console.sessions import end_all_sessions

    check_password(password)
    with sm() as s, s.begin():
        row = _row(s, name)
        row.password_hash = _hasher.hash(password)
        row.password_changed_at = _now()
        row.locked_until = None
        s.execute(delete(LoginFailureRow).where(LoginFailureRow.user_name == name))
        end_all_sessions(s, row.id)
        record(s, actor=actor, action="user_passwd", target=name)
    log.info("console_user_password_changed name=%s actor=%s", name, actor)


def set_disabled(sm: sessionmaker[Session], name: str, disabled: bool, *, actor: str) -> None:
    """Disable (ending every session) or enable an account."""
    from cloud.console.sessions import end_all_sessions

    with sm() as s, s.begin():
        row = _row(s, name)
        row.disabled = disabled
        if disabled:
            end_all_sessions(s, row.id)
        record(s, actor=actor, action="user_disable" if disabled else "user_enable", target=name)
    log.info("console_user_%s name=%s actor=%s", "disabled" if disabled else "enabled", name, actor)


def set_role(sm: sessionmaker[Session], name: str, role: str, *, actor: str) -> None:
    checked = check_role(role)
    with sm() as s, s.begin():
        _row(s, name).role = checked.value
        record(s, actor=actor, action="user_role", target=name, note=checked.value)
    log.info("console_user_role name=%s role=%s actor=%s", name, checked.value, actor)


def list_users(sm: sessionmaker[Session]) -> list[StaffUser]:
    with sm() as s:
        return [_info(r) for r in s.scalars(select(StaffUserRow).order_by(StaffUserRow.name))]


def get_user(sm: sessionmaker[Session], user_id: int) -> StaffUser | None:
    with sm() as s:
        row = s.get(StaffUserRow, user_id)
        return _info(row) if row is not None else None


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def sign_in(
    sm: sessionmaker[Session], name: str, password: str, settings: ConsoleSettings
) -> SignIn:
    """Check a name and password. Unknown names, disabled accounts and wrong passwords all
    look the same to the caller (no account enumeration); a locked account says until when."""
    now = _now()
    name = name[:80]
    with sm() as s, s.begin():
        row = s.scalars(select(StaffUserRow).where(StaffUserRow.name == name)).first()
        if row is not None and row.locked_until is not None and row.locked_until > now:
            _verify(_DUMMY_HASH, password)
            log.info("console_sign_in_refused name=%s reason=locked", name)
            return SignIn(None, locked_until=row.locked_until)
        ok = _verify(row.password_hash if row else _DUMMY_HASH, password)
        if row is not None and ok and not row.disabled:
            s.execute(delete(LoginFailureRow).where(LoginFailureRow.user_name == name))
            row.locked_until = None
            if _hasher.check_needs_rehash(row.password_hash):
                row.password_hash = _hasher.hash(password)
            record(s, actor=name, action="sign_in")
            log.info("console_sign_in name=%s role=%s", name, row.role)
            return SignIn(_info(row))
        s.add(LoginFailureRow(user_name=name, at=now))
        s.flush()
        failures = s.scalar(select(func.count()).where(LoginFailureRow.user_name == name))
        reason = "disabled" if row is not None and ok else "bad_password"
        log.info("console_sign_in_failed name=%s reason=%s failures=%s", name, reason, failures)
        if row is not None and (failures or 0) >= settings.max_failures:
            row.locked_until = now + timedelta(seconds=settings.lockout_s)
            s.execute(delete(LoginFailureRow).where(LoginFailureRow.user_name == name))
            record(s, actor="system", action="lockout", target=name, note=f"{failures} failures")
            log.warning("console_user_locked name=%s until=%s", name, row.locked_until.isoformat())
            return SignIn(None, locked_until=row.locked_until)
        return SignIn(None)
