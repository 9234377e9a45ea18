"""Maintenance windows that silence a site's or a device's alerts."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from cloud.alerts.errors import AlertNotFound
from cloud.alerts.maintenance import InvalidMaintenanceWindow, MaintenanceWindow
from cloud.api.auth import CurrentUser, RequireOperator, ServiceDep
from cloud.api.schemas import MaintenanceCreate, MaintenancePublic, MaintenanceUpdate

router = APIRouter(prefix="/maintenance", tags=["maintenance"])

WindowIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="Window id")]


def _public(w: MaintenanceWindow) -> MaintenancePublic:
    return MaintenancePublic(**asdict(w), in_force=w.in_force(datetime.now(UTC)))


def _not_found(exc: AlertNotFound) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc))


def _unprocessable(exc: InvalidMaintenanceWindow) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": ["body"], "msg": str(exc), "type": "value_error"}],
    )


@router.get("", response_model=list[MaintenancePublic], summary="Maintenance windows")
def list_windows(
    service: ServiceDep,
    _user: CurrentUser,
    site: Annotated[str | None, Query(max_length=80)] = None,
    device: Annotated[str | None, Query(max_length=64)] = None,
    include_cancelled: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[MaintenancePublic]:
    windows = service.alerts.maintenance.list(
        site=site,
        device_id=device,
        include_cancelled=include_cancelled,
        limit=limit,
        offset=offset,
    )
    return [_public(w) for w in windows]


@router.post(
    "",
    response_model=MaintenancePublic,
    status_code=status.HTTP_201_CREATED,
    summary="Silence a site or a device for a time (operator)",
)
def create_window(
    service: ServiceDep, user: RequireOperator, body: MaintenanceCreate
) -> MaintenancePublic:
    try:
        w = service.alerts.maintenance.create(
            site=body.site,
            device_id=body.device_id,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            reason=body.reason,
            actor=user.name,
        )
    except InvalidMaintenanceWindow as exc:
        raise _unprocessable(exc) from exc
    return _public(w)


@router.get(
    "/{window_id}", response_model=MaintenancePublic, responses={404: {"description": "Unknown"}}
)
def get_window(
    service: ServiceDep, _user: CurrentUser, window_id: WindowIdPath
) -> MaintenancePublic:
    try:
        return _public(service.alerts.maintenance.get(window_id))
    except AlertNotFound as exc:
        raise _not_found(exc) from exc


@router.patch(
    "/{window_id}",
    response_model=MaintenancePublic,
    summary="Change a window's times or reason (operator)",
    responses={404: {"description": "Unknown"}},
)
def update_window(
    service: ServiceDep, user: RequireOperator, window_id: WindowIdPath, body: MaintenanceUpdate
) -> MaintenancePublic:
    try:
        w = service.alerts.maintenance.update(
            window_id,
            actor=user.name,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            reason=body.reason,
        )
    except AlertNotFound as exc:
        raise _not_found(exc) from exc
    except InvalidMaintenanceWindow as exc:
        raise _unprocessable(exc) from exc
    return _public(w)


@router.delete(
    "/{window_id}",
    response_model=MaintenancePublic,
    summary="Cancel a window (kept for the audit trail) (operator)",
    responses={404: {"description": "Unknown"}},
)
def cancel_window(
    service: ServiceDep, user: RequireOperator, window_id: WindowIdPath
) -> MaintenancePublic:
    try:
        return _public(service.alerts.maintenance.cancel(window_id, actor=user.name))
    except AlertNotFound as exc:
        raise _not_found(exc) from exc
