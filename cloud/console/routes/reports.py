"""Residents' problem reports: queue by status and age, detail with photo and place,
triage and on-site confirmation (through :mod:`cloud.citizen.reports`), and the KPI."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from cloud.api.auth import Role
from cloud.citizen import photos, reports
from cloud.citizen.catalog import STATUS_LABELS, category_label
from cloud.console.forms import FieldError, choice, local_time, text
from cloud.console.kpi import by_department, by_month, risk
from cloud.console.web import ConsoleRoute, Staff, db, form_of, render, require
from cloud.db.citizen import ReportRow, create_tables

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
PAGE = 100
PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_LABELS = {"low": "低", "normal": "通常", "high": "高", "urgent": "緊急"}
TRIAGE_LABELS = {s: STATUS_LABELS[s] for s in reports.TRIAGE_STATUSES}


def _sm(request: Request):  # type: ignore[no-untyped-def]
    sm = db(request)
    if not getattr(request.app.state, "citizen_tables_ready", False):
        create_tables(sm.kw["bind"])
        request.app.state.citizen_tables_ready = True
    return sm


@router.get("/reports", name="console_reports")
def report_queue(request: Request, staff: Staff) -> HTMLResponse:
    q = request.query_params
    errors: dict[str, str] = {}
    status = None
    try:
        status = choice("status", "状態", q.get("status"), tuple(STATUS_LABELS))
    except FieldError as exc:
        errors[exc.field] = exc.message
    page = int(q["page"]) if q.get("page", "").isdigit() and int(q["page"]) < 10_000 else 0
    # oldest first: the queue is worked from the report closest to missing its week
    stmt = select(ReportRow)
    stmt = (
        stmt.where(ReportRow.status == status)
        if status
        else stmt.where(ReportRow.status.in_(("received", "triaged", "confirmed", "in_progress")))
    )
    sm = _sm(request)
    with sm() as s:
        total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = s.scalars(
            stmt.order_by(ReportRow.created_at, ReportRow.id).limit(PAGE).offset(page * PAGE)
        ).all()
        counts = dict(
            s.execute(select(ReportRow.status, func.count()).group_by(ReportRow.status)).all()
        )
    now = datetime.now(UTC)
    items = [
        (
            r,
            category_label(r.category, r.subcategory),
            risk(r.created_at, r.confirmed_at, r.status, now),
            now - r.created_at,
        )
        for r in rows
    ]
    return render(
        request,
        "reports.html",
        "市民通報",
        status_code=422 if errors else 200,
        errors=errors,
        values=dict(q),
        items=items,
        total=total,
        page=page,
        pages=(total + PAGE - 1) // PAGE,
        counts=counts,
        labels=STATUS_LABELS,
    )


@router.get("/reports/kpi", name="console_report_kpi")
def report_kpi(request: Request, staff: Staff) -> HTMLResponse:
    sm = _sm(request)
    return render(
        request,
        "report_kpi.html",
        "現地確認1週間以内の達成状況",
        months=by_month(sm),
        departments=by_department(sm),
    )


def _detail(
    request: Request,
    ref: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    row = reports.get_report(_sm(request), ref)
    if row is None:
        raise HTTPException(404, detail=f"通報 {ref[:30]} は見つかりません。")
    return render(
        request,
        "report.html",
        f"市民通報 {row.ref}",
        status_code=status_code,
        r=row,
        category=category_label(row.category, row.subcategory),
        labels=STATUS_LABELS,
        triage_labels=TRIAGE_LABELS,
        priorities=PRIORITY_LABELS,
        risk=risk(row.created_at, row.confirmed_at, row.status, datetime.now(UTC)),
        errors=errors or {},
        values=values or {},
    )


@router.get("/reports/{ref}", name="console_report")
def report_detail(request: Request, staff: Staff, ref: str) -> HTMLResponse:
    return _detail(request, ref)


@router.get("/reports/{ref}/photo", name="console_report_photo")
def report_photo(request: Request, staff: Staff, ref: str) -> Response:
    photo = reports.get_photo(_sm(request), ref) if reports.REF_RE.match(ref) else None
    if photo is None:
        raise HTTPException(404, detail=f"通報 {ref[:30]} に写真はありません。")
    mime, data = photo
    if photos.has_metadata(data):  # stored by an earlier version, before stripping
        data = photos.strip_metadata(data)[0]
    return Response(data, media_type=mime, headers={"Cache-Control": "no-store"})


def _done(request: Request, ref: str, what: str) -> RedirectResponse:
    path = request.url_for("console_report", ref=ref).path
    return RedirectResponse(f"{path}?done={what}", status_code=303)


@router.post("/reports/{ref}/triage", name="console_report_triage")
async def triage(request: Request, staff: Staff, ref: str) -> Response:
    values = await form_of(request, staff)
    require(staff, Role.OPERATOR)
    try:
        status = (
            choice("status", "状態", values.get("status"), reports.TRIAGE_STATUSES) or "triaged"
        )
        priority = choice("priority", "優先度", values.get("priority"), PRIORITIES)
        department = text("department", "担当課", values.get("department"), 80)
        note = text("public_note", "市民向けのお知らせ", values.get("public_note"), 1000)
        reports.triage(
            _sm(request),
            ref,
            actor=staff.user.name,
            status=status,
            priority=priority,
            department=department,
            public_note=note,
        )
    except FieldError as exc:
        return _detail(
            request, ref, errors={exc.field: exc.message}, values=values, status_code=422
        )
    except KeyError as exc:
        raise HTTPException(404, detail=f"通報 {ref[:30]} は見つかりません。") from exc
    except reports.ReportStateError as exc:
        return _detail(request, ref, errors={"status": str(exc)}, values=values, status_code=409)
    return _done(request, ref, "triage")


@router.post("/reports/{ref}/confirm", name="console_report_confirm")
async def confirm(request: Request, staff: Staff, ref: str) -> Response:
    values = await form_of(request, staff)
    require(staff, Role.OPERATOR)
    try:
        at = local_time("confirmed_at", "現地確認の日時", values.get("confirmed_at"))
        note = text("confirm_note", "市民向けのお知らせ", values.get("public_note"), 1000)
        reports.confirm_on_site(_sm(request), ref, actor=staff.user.name, at=at, public_note=note)
    except FieldError as exc:
        return _detail(
            request, ref, errors={exc.field: exc.message}, values=values, status_code=422
        )
    except KeyError as exc:
        raise HTTPException(404, detail=f"通報 {ref[:30]} は見つかりません。") from exc
    except reports.ReportStateError as exc:
        return _detail(
            request, ref, errors={"confirmed_at": str(exc)}, values=values, status_code=409
        )
    return _done(request, ref, "confirm")
