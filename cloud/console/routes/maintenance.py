"""Maintenance windows: list, create, change and cancel (through the alert manager's
:class:`cloud.alerts.maintenance.MaintenanceWindows`, as the API)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud.alerts.errors import AlertNotFound
from cloud.alerts.maintenance import InvalidMaintenanceWindow
from cloud.api.auth import Role
from cloud.console.forms import FieldError, local_time, text, to_local_input
from cloud.console.web import ConsoleRoute, Staff, db, form_of, render, require, service_of
from cloud.db.models import DeviceRow

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


def _page(
    request: Request,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    windows = service_of(request).alerts.maintenance.list(
        include_cancelled=request.query_params.get("all") == "1", limit=200
    )
    now = datetime.now(UTC)
    return render(
        request,
        "maintenance.html",
        "保守期間",
        status_code=status_code,
        windows=[(w, w.in_force(now)) for w in windows],
        errors=errors or {},
        values=values or {},
        local=to_local_input,
    )


@router.get("/maintenance", name="console_maintenance")
def maintenance_list(request: Request, staff: Staff) -> HTMLResponse:
    return _page(request)


def _times(values: dict[str, str]) -> tuple[datetime | None, datetime | None]:
    return (
        local_time("starts_at", "開始日時", values.get("starts_at")),
        local_time("ends_at", "終了日時", values.get("ends_at")),
    )


@router.post("/maintenance", name="console_maintenance_create")
async def create(request: Request, staff: Staff) -> Response:
    values = await form_of(request, staff)
    require(staff, Role.OPERATOR)
    errors: dict[str, str] = {}
    try:
        site = text("site", "設置場所", values.get("site"), 80)
        device_id = text("device_id", "機器ID", values.get("device_id"), 64)
        reason = text("reason", "理由", values.get("reason"), 500) or ""
        starts_at, ends_at = _times(values)
        if starts_at is None:
            raise FieldError("starts_at", "開始日時を入力してください。")
        if ends_at is None:
            raise FieldError("ends_at", "終了日時を入力してください。")
        if device_id:
            with db(request)() as s:
                if s.get(DeviceRow, device_id) is None:
                    raise FieldError("device_id", f"機器ID「{device_id}」は登録されていません。")
        service_of(request).alerts.maintenance.create(
            site=site,
            device_id=device_id,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
            actor=staff.user.name,
        )
    except FieldError as exc:
        errors[exc.field] = exc.message
    except InvalidMaintenanceWindow as exc:
        errors["site" if "site" in str(exc) else "ends_at"] = _ja(str(exc))
    if errors:
        return _page(request, errors=errors, values=values, status_code=422)
    return RedirectResponse(request.url_for("console_maintenance").path + "?done=create", 303)


def _ja(message: str) -> str:
    if "needs a site or a device_id" in message:
        return "設置場所か機器IDのどちらかを入力してください。"
    return f"終了日時は開始日時より後にしてください（{message}）。"


@router.post("/maintenance/{window_id}", name="console_maintenance_update")
async def update(request: Request, staff: Staff, window_id: int) -> Response:
    values = await form_of(request, staff)
    require(staff, Role.OPERATOR)
    errors: dict[str, str] = {}
    try:
        starts_at, ends_at = _times(
            {"starts_at": values.get("starts_at", ""), "ends_at": values.get("ends_at", "")}
        )
        reason = text("reason", "理由", values.get("reason"), 500)
        service_of(request).alerts.maintenance.update(
            window_id, actor=staff.user.name, starts_at=starts_at, ends_at=ends_at, reason=reason
        )
    except FieldError as exc:
        errors[f"{exc.field}-{window_id}"] = exc.message
    except InvalidMaintenanceWindow as exc:
        errors[f"ends_at-{window_id}"] = _ja(str(exc))
    except AlertNotFound as exc:
        raise HTTPException(404, detail=f"保守期間 {window_id} は見つかりません。") from exc
    if errors:
        return _page(request, errors=errors, status_code=422)
    return RedirectResponse(request.url_for("console_maintenance").path + "?done=update", 303)


@router.post("/maintenance/{window_id}/cancel", name="console_maintenance_cancel")
async def cancel(request: Request, staff: Staff, window_id: int) -> Response:
    await form_of(request, staff)
    require(staff, Role.OPERATOR)
    try:
        service_of(request).alerts.maintenance.cancel(window_id, actor=staff.user.name)
    except AlertNotFound as exc:
        raise HTTPException(404, detail=f"保守期間 {window_id} は見つかりません。") from exc
    return RedirectResponse(request.url_for("console_maintenance").path + "?done=cancel", 303)
