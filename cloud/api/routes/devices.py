"""Device registry, latest values, gateways and time series (viewer role)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from cloud.api.auth import CurrentUser, RequireAdmin, ServiceDep
from cloud.api.schemas import (
    DevicePublic,
    FieldValuePublic,
    GatewayPublic,
    LatestPublic,
    SeriesPublic,
    bounded_utc,
)
from cloud.db.models import DeviceRow
from cloud.errors import StoreError
from cloud.provisioning import (
    DeviceNotFound,
    ProvisioningError,
    add_device,
    import_devices,
    move_device,
    remove_device,
)
from schemas.devices import DeviceKind, values_model
from schemas.wire import ID_PATTERN, DeviceInfo, GatewayId

router = APIRouter(tags=["devices"])
log = logging.getLogger(__name__)

DeviceIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="Device id")]
WINDOW_PATTERN = r"^[1-9][0-9]{0,5}(s|m|h|d)$"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_POINTS = 10_000
MAX_RAW_SPAN = timedelta(days=7)
_NUMERIC_AGGREGATES = {"mean", "min", "max"}


def invalid(param: str, message: str, value: object) -> HTTPException:
    """A 422 in FastAPI's own shape, naming the query parameter."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[
            {"loc": ["query", param], "msg": message, "type": "value_error", "input": str(value)}
        ],
    )


def parse_window(text: str) -> timedelta:
    m = re.match(WINDOW_PATTERN, text)
    if m is None:
        raise ValueError(f"window {text!r} must look like 30s, 5m, 1h or 1d")
    return timedelta(seconds=int(text[:-1]) * _UNITS[text[-1]])


def _device(row: DeviceRow) -> DevicePublic:
    return DevicePublic(
        device_id=row.device_id,
        kind=row.kind,
        gateway_id=row.gateway_id,
        site=row.site,
        district=row.district,
        area=row.area,
        lat=row.lat,
        lon=row.lon,
        poll_interval_s=row.poll_interval_s,
        vehicle_type=row.vehicle_type,
        state=row.state,
        state_reason=row.state_reason,
        last_seen=row.last_seen,
    )


@router.get("/devices", response_model=list[DevicePublic], summary="The device registry")
def list_devices(
    service: ServiceDep,
    _user: CurrentUser,
    kind: DeviceKind | None = None,
    district: Annotated[str | None, Query(max_length=80)] = None,
    gateway: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[str | None, Query(max_length=16, description="online, offline")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[DevicePublic]:
    stmt = select(DeviceRow)
    if kind is not None:
        stmt = stmt.where(DeviceRow.kind == kind.value)
    if district is not None:
        stmt = stmt.where(DeviceRow.district == district)
    if gateway is not None:
        stmt = stmt.where(DeviceRow.gateway_id == gateway)
    if state is not None:
        stmt = stmt.where(DeviceRow.state == state)
    stmt = stmt.order_by(DeviceRow.device_id).limit(limit).offset(offset)
    with service.sessionmaker() as s:
        return [_device(r) for r in s.scalars(stmt)]


def _get_device(service: ServiceDep, device_id: str) -> DeviceRow | None:
    with service.sessionmaker() as s:
        return s.get(DeviceRow, device_id)


@router.get(
    "/devices/{device_id}",
    response_model=DevicePublic,
    responses={404: {"description": "Unknown device"}},
)
def get_device(service: ServiceDep, _user: CurrentUser, device_id: DeviceIdPath) -> DevicePublic:
    row = _get_device(service, device_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"device {device_id!r} not found")
    return _device(row)


def _store_failed(exc: StoreError) -> HTTPException:
    if exc.retryable:
        return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"store: {exc}")
    return invalid("field", f"the store refused the query: {exc}", "")


@router.get(
    "/devices/{device_id}/latest",
    response_model=LatestPublic,
    summary="Last value of every field of a device (from the store)",
    responses={404: {"description": "Unknown device"}, 503: {"description": "Store down"}},
)
def latest(service: ServiceDep, _user: CurrentUser, device_id: DeviceIdPath) -> LatestPublic:
    try:
        values = service.store.latest(device_id)
    except StoreError as exc:
        raise _store_failed(exc) from exc
    if not values and _get_device(service, device_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"device {device_id!r} not found")
    return LatestPublic(
        device_id=device_id,
        fields={k: FieldValuePublic(ts=p.ts, value=p.value) for k, p in sorted(values.items())},
    )


@router.get(
    "/gateways",
    response_model=list[GatewayPublic],
    summary="Gateways: online state (birth / Last Will), last seq, gaps and duplicates",
)
def list_gateways(service: ServiceDep, _user: CurrentUser) -> list[GatewayPublic]:
    gateways = service.registry.gateways()  # in memory: seq counters are current
    return [
        GatewayPublic(
            gateway_id=g.gateway_id,
            state=g.state,
            state_since=g.state_since,
            last_seq=g.last_seq,
            gaps=g.gaps,
            duplicates=g.duplicates,
            version=g.version,
            health=g.health,
            last_seen=g.last_seen,
        )
        for _, g in sorted(gateways.items())
    ]


def _utc(param: str, value: datetime) -> datetime:
    if value.tzinfo is None:
        raise invalid(param, "needs a UTC offset, e.g. 2026-06-01T00:00:00Z", value.isoformat())
    try:
        return bounded_utc(value)
    except ValueError as exc:
        raise invalid(param, str(exc), value.isoformat()) from exc


@router.get(
    "/series",
    response_model=SeriesPublic,
    summary="One field of one device over time, raw or aggregated per window",
    responses={503: {"description": "Store down"}},
)
def series(
    service: ServiceDep,
    _user: CurrentUser,
    device: Annotated[str, Query(pattern=ID_PATTERN, description="Device id")],
    field: Annotated[str, Query(pattern=r"^[a-z][a-z0-9_]{0,39}$", description="Field name")],
    start: Annotated[
        datetime | None, Query(description="ISO 8601 with offset; default end - 1 h")
    ] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601 with offset; default now")] = None,
    window: Annotated[
        str | None,
        Query(pattern=WINDOW_PATTERN, description="Aggregate window: 30s, 5m, 1h, 1d"),
    ] = None,
    aggregate: Annotated[
        Literal["mean", "min", "max", "last", "count"],
        Query(description="Aggregate per window (needs window)"),
    ] = "mean",
) -> SeriesPublic:
    end_ = _utc("end", end) if end is not None else datetime.now(UTC)
    start_ = _utc("start", start) if start is not None else end_ - timedelta(hours=1)
    if start_ >= end_:
        raise invalid("start", "must be before end", start_.isoformat())
    win = parse_window(window) if window else None
    if win is None and end_ - start_ > MAX_RAW_SPAN:
        raise invalid("window", "raw series are limited to 7 days; give a window", window)
    if win is not None and (end_ - start_) / win > MAX_POINTS:
        raise invalid("window", f"too small for this range: over {MAX_POINTS} points", window)
    row = _get_device(service, device)
    if row is not None:
        model = values_model(row.kind)
        if field not in model.model_fields:
            fields = ", ".join(model.model_fields)
            raise invalid("field", f"not a field of {row.kind}; one of: {fields}", field)
        types = get_args(model.model_fields[field].annotation)
        numeric = bool({int, float} & set(types)) and bool not in types
        if win is not None and aggregate in _NUMERIC_AGGREGATES and not numeric:
            raise invalid("aggregate", f"{aggregate} needs a numeric field", aggregate)
    try:
        points = service.store.series(device, field, start_, end_, win, aggregate)
    except StoreError as exc:
        raise _store_failed(exc) from exc
    return SeriesPublic(
        device=device,
        field=field,
        start=start_,
        end=end_,
        window=window,
        aggregate=aggregate if win else None,
        points=[FieldValuePublic(ts=p.ts, value=p.value) for p in points],
    )


# --- provisioning (admin): which gateway owns which device ------------------------------


class DeviceProvision(DeviceInfo):
    """A device to register, with the gateway that owns it."""

    gateway_id: GatewayId


class DeviceMove(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gateway_id: GatewayId


class DeviceImport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    devices: list[DeviceInfo] = Field(max_length=20_000)


class ImportResult(BaseModel):
    gateway_id: str
    added: int
    updated: int


def _provisioning_failed(exc: ProvisioningError) -> HTTPException:
    code = (
        status.HTTP_404_NOT_FOUND if isinstance(exc, DeviceNotFound) else status.HTTP_409_CONFLICT
    )
    return HTTPException(code, detail=str(exc))


def _changed(service: ServiceDep, device_id: str) -> DevicePublic:
    # this process at once; the other workers within seconds (registry version row)
    service.registry.load()
    row = _get_device(service, device_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"device {device_id!r} not found")
    return _device(row)


@router.post(
    "/devices",
    response_model=DevicePublic,
    status_code=status.HTTP_201_CREATED,
    summary="Register a device for a gateway (admin)",
    responses={409: {"description": "The device exists"}},
)
def provision_device(
    user: RequireAdmin, service: ServiceDep, body: DeviceProvision
) -> DevicePublic:
    info = DeviceInfo.model_validate(body.model_dump(exclude={"gateway_id"}))
    try:
        add_device(service.sessionmaker, info, body.gateway_id)
    except ProvisioningError as exc:
        raise _provisioning_failed(exc) from exc
    log.info("api_device_added actor=%s device=%s", user.name, info.device_id)
    return _changed(service, info.device_id)


@router.put(
    "/devices/{device_id}/gateway",
    response_model=DevicePublic,
    summary="Move a device to another gateway (admin)",
    responses={404: {"description": "Unknown device"}},
)
def move(
    user: RequireAdmin, service: ServiceDep, device_id: DeviceIdPath, body: DeviceMove
) -> DevicePublic:
    try:
        move_device(service.sessionmaker, device_id, body.gateway_id)
    except ProvisioningError as exc:
        raise _provisioning_failed(exc) from exc
    log.info("api_device_moved actor=%s device=%s to=%s", user.name, device_id, body.gateway_id)
    return _changed(service, device_id)


@router.delete(
    "/devices/{device_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a device: no gateway may send data for it (admin)",
    responses={404: {"description": "Unknown device"}},
)
def remove(user: RequireAdmin, service: ServiceDep, device_id: DeviceIdPath) -> None:
    try:
        remove_device(service.sessionmaker, device_id)
    except ProvisioningError as exc:
        raise _provisioning_failed(exc) from exc
    service.registry.load()
    log.info("api_device_removed actor=%s device=%s", user.name, device_id)


@router.post(
    "/gateways/{gateway_id}/devices",
    response_model=ImportResult,
    summary="Provision a gateway's device list (admin); refused whole if one is another's",
    responses={409: {"description": "A device is owned by another gateway or kind"}},
)
def import_gateway_devices(
    user: RequireAdmin,
    service: ServiceDep,
    gateway_id: Annotated[str, Path(pattern=ID_PATTERN, description="Gateway id")],
    body: DeviceImport,
) -> ImportResult:
    try:
        added, updated = import_devices(service.sessionmaker, gateway_id, body.devices)
    except ProvisioningError as exc:
        raise _provisioning_failed(exc) from exc
    service.registry.load()
    log.info("api_devices_imported actor=%s gateway=%s added=%d", user.name, gateway_id, added)
    return ImportResult(gateway_id=gateway_id, added=added, updated=updated)
