"""Alerts: list and read (viewer), acknowledge and resolve (operator)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status

from cloud.alerts.errors import AlertNotFound, AlertStateError
from cloud.alerts.manager import AlertRecord
from cloud.api.auth import CurrentUser, RequireOperator, ServiceDep
from cloud.api.schemas import (
    AlertActionRequest,
    AlertDetailPublic,
    AlertEventPublic,
    AlertPublic,
)
from schemas.alert import AlertState, Severity

router = APIRouter(prefix="/alerts", tags=["alerts"])

AlertIdPath = Annotated[str, Path(min_length=1, max_length=64, description="Alert id")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown alert"},
    409: {"description": "Not allowed from the alert's state"},
}


def to_public(record: AlertRecord) -> AlertPublic:
    return AlertPublic(
        **record.alert.model_dump(),
        extra=dict(record.extra),
        district=record.district,
        acknowledged_at=record.acknowledged_at,
        acknowledged_by=record.acknowledged_by,
        cleared_at=record.cleared_at,
    )


@router.get("", response_model=list[AlertPublic], summary="Alerts, newest first")
def list_alerts(
    service: ServiceDep,
    _user: CurrentUser,
    state: AlertState | None = None,
    kind: Annotated[str | None, Query(max_length=64, description="e.g. flood_stage")] = None,
    severity: Severity | None = None,
    device: Annotated[str | None, Query(max_length=64)] = None,
    active: Annotated[bool, Query(description="Only open and acknowledged alerts")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[AlertPublic]:
    if active:
        records = [
            r
            for r in service.alerts.active_records()
            if (state is None or r.alert.state == state)
            and (kind is None or r.alert.kind == kind)
            and (severity is None or r.alert.severity == severity)
            and (device is None or r.alert.device_id == device)
        ]
        records.sort(key=lambda r: r.alert.started_at, reverse=True)
        return [to_public(r) for r in records[offset : offset + limit]]
    records = service.alerts.query(
        state=state, kind=kind, severity=severity, device_id=device, limit=limit, offset=offset
    )
    return [to_public(r) for r in records]


@router.get(
    "/{alert_id}",
    response_model=AlertDetailPublic,
    summary="One alert with its audit trail",
    responses={404: _ERRORS[404]},
)
def get_alert(service: ServiceDep, _user: CurrentUser, alert_id: AlertIdPath) -> AlertDetailPublic:
    try:
        record = service.alerts.get(alert_id)
        events = service.alerts.events(alert_id)
    except AlertNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    return AlertDetailPublic(
        **to_public(record).model_dump(),
        events=[AlertEventPublic(**asdict(e)) for e in events],
    )


def _act(
    service: ServiceDep, alert_id: str, actor: str, note: str | None, action: str
) -> AlertPublic:
    try:
        if action == "ack":
            service.alerts.ack(alert_id, actor, note)
        else:
            service.alerts.resolve(alert_id, actor, note)
        return to_public(service.alerts.get(alert_id))
    except AlertNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    except AlertStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc


@router.post(
    "/{alert_id}/ack",
    response_model=AlertPublic,
    summary="Acknowledge an open alert (operator)",
    responses=_ERRORS,
)
def ack_alert(
    service: ServiceDep,
    user: RequireOperator,
    alert_id: AlertIdPath,
    body: AlertActionRequest | None = None,
) -> AlertPublic:
    return _act(service, alert_id, user.name, body.note if body else None, "ack")


@router.post(
    "/{alert_id}/resolve",
    response_model=AlertPublic,
    summary="Resolve an open or acknowledged alert (operator)",
    responses=_ERRORS,
)
def resolve_alert(
    service: ServiceDep,
    user: RequireOperator,
    alert_id: AlertIdPath,
    body: AlertActionRequest | None = None,
) -> AlertPublic:
    return _act(service, alert_id, user.name, body.note if body else None, "resolve")
