"""Bus service alerts for the GTFS-Realtime ServiceAlerts feed: list (viewer), create
and delete (operator). Published without a token at
``/opendata/gtfs-rt/service-alerts.pb``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.auth import CurrentUser, RequireOperator, ServiceDep
from cloud.opendata.service_alerts import ServiceAlertError
from cloud.opendata.service_alerts import store_for as _store

router = APIRouter(prefix="/service-alerts", tags=["service alerts"])


class ServiceAlertCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    header_ja: str = Field(min_length=1, max_length=200, examples=["大雪のため遅延"])
    description_ja: str = Field(default="", max_length=2000)
    header_en: str | None = Field(default=None, max_length=200)
    description_en: str | None = Field(default=None, max_length=2000)
    cause: str = Field(default="UNKNOWN_CAUSE", examples=["WEATHER"])
    effect: str = Field(default="UNKNOWN_EFFECT", examples=["SIGNIFICANT_DELAYS"])
    route_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=200
    )
    stop_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=500
    )
    active_from: datetime | None = None
    active_until: datetime | None = None
    url: str | None = Field(default=None, max_length=500)


class ServiceAlertPublic(ServiceAlertCreate):
    model_config = ConfigDict(extra="ignore")

    id: int
    created_at: datetime
    created_by: str


def _known_routes(service: Any) -> frozenset[str] | None:
    feed = getattr(service, "gtfs", None)
    static = feed.get() if feed is not None else None
    return frozenset(static.routes) if static is not None else None


@router.get("", response_model=list[ServiceAlertPublic], summary="Service alerts")
def list_service_alerts(service: ServiceDep, _user: CurrentUser) -> list[ServiceAlertPublic]:
    return [
        ServiceAlertPublic.model_validate(a, from_attributes=True) for a in _store(service).all()
    ]


@router.post(
    "",
    response_model=ServiceAlertPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Publish a service alert, e.g. 大雪のため遅延 (operator)",
)
def create_service_alert(
    service: ServiceDep, user: RequireOperator, body: ServiceAlertCreate
) -> ServiceAlertPublic:
    try:
        alert = _store(service).create(
            created_by=user.name, known_routes=_known_routes(service), **body.model_dump()
        )
    except ServiceAlertError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
    return ServiceAlertPublic.model_validate(alert, from_attributes=True)


@router.delete(
    "/{alert_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Withdraw a service alert (operator)",
)
def delete_service_alert(
    service: ServiceDep,
    _user: RequireOperator,
    alert_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> None:
    if not _store(service).delete(alert_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"service alert {alert_id} not found")
