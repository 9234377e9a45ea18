"""Alerts: filtered list, detail with a chart and the audit trail, ack and resolve."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud.alerts.errors import AlertNotFound, AlertStateError
from cloud.api.auth import Role
from cloud.console.alerts import PAGE, AlertFilter, alert_kinds, find_alerts
from cloud.console.chart import load_chart
from cloud.console.fields import chart_field
from cloud.console.forms import FieldError, choice, local_time, text
from cloud.console.overview import SEVERITIES
from cloud.console.web import ConsoleRoute, Staff, db, form_of, render, require, service_of
from cloud.db.models import DeviceRow

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
STATES = ("open", "acknowledged", "resolved")
CHART_BEFORE = timedelta(hours=2)
CHART_AFTER = timedelta(hours=1)


@router.get("/alerts", name="console_alerts")
def alert_list(request: Request, staff: Staff) -> HTMLResponse:
    q = request.query_params
    sm = db(request)
    errors: dict[str, str] = {}
    f = AlertFilter()
    try:
        f = AlertFilter(
            state=choice("state", "状態", q.get("state"), STATES),
            kind=text("kind", "種類", q.get("kind"), 64),
            severity=choice("severity", "重要度", q.get("severity"), SEVERITIES),
            site=text("site", "設置場所", q.get("site"), 80),
            since=local_time("since", "開始日時（から）", q.get("since")),
            until=local_time("until", "開始日時（まで）", q.get("until")),
        )
    except FieldError as exc:
        errors[exc.field] = exc.message
    page = int(q["page"]) if q.get("page", "").isdigit() and int(q["page"]) < 10_000 else 0
    rows, total = find_alerts(sm, f, page=page) if not errors else ([], 0)
    return render(
        request,
        "alerts.html",
        "警報",
        status_code=422 if errors else 200,
        errors=errors,
        values=dict(q),
        rows=rows,
        total=total,
        page=page,
        pages=(total + PAGE - 1) // PAGE,
        kinds=[(k, k) for k in alert_kinds(sm)],
        states=STATES,
        severities=SEVERITIES,
    )


def _detail(
    request: Request,
    alert_id: str,
    *,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    service = service_of(request)
    try:
        record = service.alerts.get(alert_id)
        events = service.alerts.events(alert_id)
    except AlertNotFound as exc:
        raise HTTPException(404, detail=f"警報 {alert_id} は見つかりません。") from exc
    alert = record.alert
    device = None
    chart = None
    if alert.device_id:
        with db(request)() as s:
            device = s.get(DeviceRow, alert.device_id)
        picked = chart_field(device.kind if device else None, record.extra)
        if picked is not None:
            end = min(alert.resolved_at or datetime.now(UTC), alert.started_at + CHART_AFTER)
            end = max(end, alert.started_at + timedelta(minutes=10))
            chart = load_chart(
                service.store,
                alert.device_id,
                picked[0],
                picked[1],
                alert.started_at - CHART_BEFORE,
                end,
            )
    return render(
        request,
        "alert_detail.html",
        f"警報: {alert.title}",
        status_code=status_code,
        record=record,
        alert=alert,
        events=[asdict(e) for e in events],
        device=device,
        chart=chart,
        errors=errors or {},
        flash=flash,
    )


@router.get("/alerts/{alert_id}", name="console_alert")
def alert_detail(request: Request, staff: Staff, alert_id: str) -> HTMLResponse:
    return _detail(request, alert_id[:64])


async def _act(request: Request, staff: Staff, alert_id: str, action: str) -> Response:
    values = await form_of(request, staff)
    require(staff, Role.OPERATOR)
    try:
        note = text("note", "メモ", values.get("note"), 2000)
    except FieldError as exc:
        return _detail(request, alert_id, errors={exc.field: exc.message}, status_code=422)
    manager = service_of(request).alerts
    try:
        if action == "ack":
            manager.ack(alert_id, staff.user.name, note)
        else:
            manager.resolve(alert_id, staff.user.name, note)
    except AlertNotFound as exc:
        raise HTTPException(404, detail=f"警報 {alert_id} は見つかりません。") from exc
    except AlertStateError:
        state = service_of(request).alerts.get(alert_id).alert.state.value
        message = f"この警報は現在「{state}」のため、この操作はできません。"
        return _detail(request, alert_id, errors={"note": message}, status_code=409)
    # POST-redirect-GET: a reload does not post the action again
    target = request.url_for("console_alert", alert_id=alert_id).path
    return RedirectResponse(f"{target}?done={action}", status_code=303)


@router.post("/alerts/{alert_id}/ack", name="console_alert_ack")
async def ack(request: Request, staff: Staff, alert_id: str) -> Response:
    return await _act(request, staff, alert_id[:64], "ack")


@router.post("/alerts/{alert_id}/resolve", name="console_alert_resolve")
async def resolve(request: Request, staff: Staff, alert_id: str) -> Response:
    return await _act(request, staff, alert_id[:64], "resolve")
