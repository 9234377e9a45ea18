"""Bearer-token auth for the staff API.

Roles are ordered ``viewer < operator < admin``: viewers read, operators also
acknowledge and resolve alerts and manage maintenance windows, admins also manage
tokens. Only the SHA-256 hash of a token is stored (``api_tokens``); the secret is
shown once, when it is created (``akita cloud token create``).

Routes declare what they need with the ``Annotated`` aliases below::

    @router.get("/alerts")
    def list_alerts(user: CurrentUser, service: ServiceDep): ...

    @router.post("/alerts/{id}/ack")
    def ack(user: RequireOperator, ...): ...
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.models import ApiTokenRow
from cloud.errors import CloudError
from cloud.service import CloudService

log = logging.getLogger(__name__)

TOKEN_PREFIX = "akt_"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,79}$"
_NAME = re.compile(NAME_PATTERN)


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


class TokenError(CloudError):
    """A token cannot be created or revoked (bad name or role, duplicate name, unknown id)."""


@dataclass(frozen=True, slots=True)
class User:
    """The caller, as identified by a token. ``name`` is the actor recorded in audits."""

    token_id: int
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _info(row: ApiTokenRow) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def create_token(sessionmaker: sessionmaker[Session], *, name: str, role: Role | str) -> str:
    """Create a token and return its secret (the only time it exists in clear)."""
    secret, _ = issue_token(sessionmaker, name=name, role=role)
    return secret


def issue_token(
    sessionmaker: sessionmaker[Session], *, name: str, role: Role | str
) -> tuple[str, TokenInfo]:
    if not _NAME.match(name):
        raise TokenError(f"token name {name!r} must match {NAME_PATTERN}")
    try:
        role = Role(role)
    except ValueError as exc:
        raise TokenError(
            f"token role {role!r} is not one of {', '.join(r.value for r in Role)}"
        ) from exc
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with sessionmaker() as s, s.begin():
            row = ApiTokenRow(
                name=name,
                role=role.value,
                token_hash=hash_token(secret),
                created_at=datetime.now(UTC),
            )
            s.add(row)
            s.flush()
            info = _info(row)
    except IntegrityError as exc:
        raise TokenError(f"a token named {name!r} already exists") from exc
    log.info("token_created name=%s role=%s id=%s", name, role.value, info.id)
    return secret, info


def list_tokens(sessionmaker: sessionmaker[Session]) -> list[TokenInfo]:
    with sessionmaker() as s:
        return [_info(r) for r in s.scalars(select(ApiTokenRow).order_by(ApiTokenRow.id))]


def revoke_token(sessionmaker: sessionmaker[Session], token_id: int, *, actor: str) -> TokenInfo:
    with sessionmaker() as s, s.begin():
        row = s.get(ApiTokenRow, token_id)
        if row is None:
            raise TokenError(f"token {token_id} not found")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
        info = _info(row)
    log.info("token_revoked name=%s id=%s actor=%s", info.name, token_id, actor)
    return info


def authenticate(sessionmaker: sessionmaker[Session], secret: str) -> User | None:
    """The user a secret belongs to, or None (unknown or revoked)."""
    digest = hash_token(secret)
    with sessionmaker() as s:
        row = s.scalars(select(ApiTokenRow).where(ApiTokenRow.token_hash == digest)).first()
        # constant-time compare as well, so timing says nothing about near-misses
        if (
            row is None
            or row.revoked_at is not None
            or not hmac.compare_digest(row.token_hash, digest)
        ):
            return None
        return User(token_id=row.id, name=row.name, role=Role(row.role))


# -- FastAPI dependencies ----------------------------------------------------------------


def get_service(request: Request) -> CloudService:
    return request.app.state.service  # type: ignore[no-any-return]


ServiceDep = Annotated[CloudService, Depends(get_service)]


def _bearer(role: Role) -> HTTPBearer:
    # one security scheme per role, named after it, so the OpenAPI document says which
    # role each operation needs (the auth tests read it from there)
    return HTTPBearer(
        auto_error=False,
        scheme_name=role.value,
        description=f"Bearer token of role {role.value} or higher (akita cloud token create)",
    )


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def _user(request: Request, credentials: HTTPAuthorizationCredentials | None) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("missing bearer token")
    user = authenticate(get_service(request).sessionmaker, credentials.credentials)
    if user is None:
        raise _unauthorized("invalid or revoked token")
    return user


def require_role(role: Role) -> Any:
    """A dependency that lets through tokens of ``role`` or higher: 401 without a valid
    token, 403 with too low a role."""
    bearer = _bearer(role)

    def dependency(request: Request, credentials: HTTPAuthorizationCredentials | None) -> User:
        user = _user(request, credentials)
        if user.role.rank < role.rank:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"role {role.value} required; token {user.name!r} is {user.role.value}",
            )
        return user

    # a real object, not a string: the closure's ``bearer`` is not a module global
    dependency.__annotations__["credentials"] = Annotated[
        HTTPAuthorizationCredentials | None, Depends(bearer)
    ]
    dependency.__name__ = f"require_{role.value}"
    return dependency


require_viewer = require_role(Role.VIEWER)
require_operator = require_role(Role.OPERATOR)
require_admin = require_role(Role.ADMIN)

CurrentUser = Annotated[User, Depends(require_viewer)]
RequireViewer = CurrentUser
RequireOperator = Annotated[User, Depends(require_operator)]
RequireAdmin = Annotated[User, Depends(require_admin)]

_viewer_bearer = _bearer(Role.VIEWER)


def metrics_access(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_viewer_bearer)],
) -> User | None:
    """Viewer or better for /metrics, unless ``api.metrics_public`` lifts it."""
    if get_service(request).settings.api.metrics_public:
        return None
    return _user(request, credentials)
