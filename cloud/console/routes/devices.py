"""Devices and gateways: registry state, latest values with units, 24-hour charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, or_, select

from cloud.alerts.manager import ACTIVE_STATES
from cloud.console.chart import load_chart
from cloud.console.fields import numeric_fields
from cloud.console.forms import FieldError, choice, text
from cloud.console.web import ConsoleRoute, Staff, db, render, service_of
from cloud.db.models import AlertRow, DeviceRow
from cloud.errors import StoreError
from schemas.devices import DeviceKind, field_unit, values_model

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
PAGE = 100
KINDS = tuple(k.value for k in DeviceKind)
DEVICE_STATES = ("online", "offline", "unknown")


@router.get("/devices", name="console_devices")
def device_list(request: Request, staff: Staff) -> HTMLResponse:
    q = request.query_params
    errors: dict[str, str] = {}
    kind = state = search = None
    try:
        kind = choice("kind", "種類", q.get("kind"), KINDS)
        state = choice("state", "状態", q.get("state"), DEVICE_STATES)
        search = text("q", "検索", q.get("q"), 80)
    except FieldError as exc:
        errors[exc.field] = exc.message
    page = int(q["page"]) if q.get("page", "").isdigit() and int(q["page"]) < 10_000 else 0
    stmt = select(DeviceRow)
    if kind:
        stmt = stmt.where(DeviceRow.kind == kind)
    if state:
        stmt = stmt.where(DeviceRow.state == state)
    if search:
        stmt = stmt.where(
            or_(
                DeviceRow.device_id.contains(search, autoescape=True),
                DeviceRow.site.contains(search, autoescape=True),
                DeviceRow.area.contains(search, autoescape=True),
            )
        )
    with db(request)() as s:
        total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = s.scalars(stmt.order_by(DeviceRow.device_id).limit(PAGE).offset(page * PAGE)).all()
    return render(
        request,
        "devices.html",
        "機器",
        status_code=422 if errors else 200,
        errors=errors,
        values=dict(q),
        rows=rows,
        total=total,
        page=page,
        pages=(total + PAGE - 1) // PAGE,
        kinds=[(k, k) for k in KINDS],
    )


@router.get("/devices/{device_id}", name="console_device")
def device_detail(request: Request, staff: Staff, device_id: str) -> HTMLResponse:
    sm = db(request)
    with sm() as s:
        device = s.get(DeviceRow, device_id[:64])
        alerts = s.scalars(
            select(AlertRow)
            .where(AlertRow.device_id == device_id[:64], AlertRow.state.in_(ACTIVE_STATES))
            .order_by(AlertRow.started_at.desc())
        ).all()
    if device is None:
        raise HTTPException(404, detail=f"機器 {device_id[:64]} は登録されていません。")
    store = service_of(request).store
    store_error = None
    try:
        latest = store.latest(device.device_id)
    except StoreError:
        latest, store_error = {}, "時系列データベースが応答しません。"
    fields = values_model(device.kind).model_fields if device.kind in KINDS else {}
    values = [
        (name, latest[name].value, field_unit(device.kind, name) or "", latest[name].ts)
        for name in fields
        if name in latest
    ]
    end = datetime.now(UTC)
    charts = [
        load_chart(
            store,
            device.device_id,
            name,
            unit,
            end - timedelta(hours=24),
            end,
            timedelta(minutes=10),
        )
        for name, unit in numeric_fields(device.kind)
        if name in latest
    ]
    return render(
        request,
        "device.html",
        f"機器: {device.device_id}",
        device=device,
        alerts=alerts,
        values=values,
        charts=charts,
        store_error=store_error,
    )


@router.get("/gateways", name="console_gateways")
def gateway_list(request: Request, staff: Staff) -> HTMLResponse:
    gateways = sorted(service_of(request).registry.gateways().items())
    return render(request, "gateways.html", "ゲートウェイ", gateways=[g for _, g in gateways])
