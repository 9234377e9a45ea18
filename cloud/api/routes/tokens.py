"""API tokens (admin): list, create (the secret is shown once), revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from cloud.api.auth import (
    RequireAdmin,
    ServiceDep,
    TokenError,
    TokenInfo,
    issue_token,
    list_tokens,
    revoke_token,
)
from cloud.api.schemas import TokenCreate, TokenCreatedPublic, TokenPublic

router = APIRouter(prefix="/tokens", tags=["tokens"])


def _public(info: TokenInfo) -> TokenPublic:
    return TokenPublic(
        id=info.id,
        name=info.name,
        role=info.role,
        created_at=info.created_at,
        revoked_at=info.revoked_at,
    )


@router.get("", response_model=list[TokenPublic], summary="All tokens (never their secrets)")
def get_tokens(service: ServiceDep, _user: RequireAdmin) -> list[TokenPublic]:
    return [_public(t) for t in list_tokens(service.sessionmaker)]


@router.post(
    "",
    response_model=TokenCreatedPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create a token; the response holds the secret, shown this once",
    responses={409: {"description": "A token with that name exists"}},
)
def create(service: ServiceDep, user: RequireAdmin, body: TokenCreate) -> TokenCreatedPublic:
    try:
        secret, info = issue_token(service.sessionmaker, name=body.name, role=body.role)
    except TokenError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    return TokenCreatedPublic(**_public(info).model_dump(), token=secret)


@router.delete(
    "/{token_id}",
    response_model=TokenPublic,
    summary="Revoke a token",
    responses={404: {"description": "Unknown token"}},
)
def revoke(
    service: ServiceDep,
    user: RequireAdmin,
    token_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> TokenPublic:
    try:
        return _public(revoke_token(service.sessionmaker, token_id, actor=user.name))
    except TokenError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
