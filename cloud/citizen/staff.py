"""Staff API for citizen problem reports (bearer tokens, see :mod:`cloud.api.auth`).

viewer: list and read reports, fetch a photo, read the one-week confirmation rate.
operator: triage (status, priority, department, a note shown to the resident) and record
the on-site confirmation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.auth import CurrentUser, RequireOperator
from cloud.citizen import photos, reports
from cloud.citizen.bodies import LimitedBodyRoute
from cloud.citizen.catalog import CATEGORIES, STATUS_LABELS, category_label
from cloud.db.citizen import ReportRow, create_tables

# bodies are read within 64 KiB before authentication or parsing (chunked ones too)
router = APIRouter(prefix="/reports", tags=["citizen reports"], route_class=LimitedBodyRoute)

RefPath = Annotated[
    str, Path(pattern=reports.REF_RE.pattern, description="Reference, e.g. AK-2026-000123")
]
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown reference"},
    409: {"description": "Not allowed from the report's state"},
}


class PhotoPublic(BaseModel):
    mime: str
    size_bytes: int
    width: int
    height: int
    sha256: str
    exif_lat: float | None
    exif_lon: float | None
    url: str


class ReportPublic(BaseModel):
    ref: str
    category: str
    subcategory: str
    category_label: str
    description: str
    address: str | None
    lat: float | None
    lon: float | None
    location_source: str
    status: str
    status_label: str
    priority: str | None
    department: str | None
    public_note: str | None
    created_at: datetime
    updated_at: datetime
    triaged_at: datetime | None
    triaged_by: str | None
    confirmed_at: datetime | None
    confirmed_by: str | None
    closed_at: datetime | None
    photo: PhotoPublic | None


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TriageRequest(_In):
    status: Literal["triaged", "in_progress", "closed", "rejected"] = "triaged"
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    department: str | None = Field(default=None, max_length=80)
    public_note: str | None = Field(
        default=None, max_length=1000, description="Shown to the resident on the status page"
    )


class ConfirmRequest(_In):
    confirmed_at: datetime | None = Field(
        default=None, description="When staff were on site (aware time); default now"
    )
    public_note: str | None = Field(default=None, max_length=1000)


class CategoryStats(BaseModel):
    eligible: int
    confirmed_within_week: int
    pending: int
    rejected: int
    rate: float | None


class ReportStats(BaseModel):
    window_days: int
    computed_at: datetime
    since: datetime | None
    until: datetime | None
    reports: int
    eligible: int = Field(description="Reports whose first week has ended, or confirmed")
    confirmed_within_week: int
    pending: int = Field(description="Still inside their first week, not yet confirmed")
    rejected: int = Field(description="Rejected without confirmation; not in the rate")
    rate: float | None = Field(description="confirmed_within_week / eligible")
    median_hours_to_confirm: float | None
    by_category: dict[str, CategoryStats]


def _sm(request: Request) -> Any:
    sm = request.app.state.service.sessionmaker
    if not getattr(request.app.state, "citizen_tables_ready", False):
        create_tables(sm.kw["bind"])
        request.app.state.citizen_tables_ready = True
    return sm


def to_public(request: Request, row: ReportRow) -> ReportPublic:
    photo = None
    if row.photo is not None:
        p = row.photo
        photo = PhotoPublic(
            mime=p.mime,
            size_bytes=p.size_bytes,
            width=p.width,
            height=p.height,
            sha256=p.sha256,
            exif_lat=p.exif_lat,
            exif_lon=p.exif_lon,
            url=request.url_for("staff_report_photo", ref=row.ref).path,
        )
    return ReportPublic(
        ref=row.ref or "",
        category=row.category,
        subcategory=row.subcategory,
        category_label=category_label(row.category, row.subcategory),
        description=row.description,
        address=row.address,
        lat=row.lat,
        lon=row.lon,
        location_source=row.location_source,
        status=row.status,
        status_label=STATUS_LABELS.get(row.status, row.status),
        priority=row.priority,
        department=row.department,
        public_note=row.public_note,
        created_at=row.created_at,
        updated_at=row.updated_at,
        triaged_at=row.triaged_at,
        triaged_by=row.triaged_by,
        confirmed_at=row.confirmed_at,
        confirmed_by=row.confirmed_by,
        closed_at=row.closed_at,
        photo=photo,
    )


@router.get("", response_model=list[ReportPublic], summary="Problem reports, newest first")
def list_reports(
    request: Request,
    _user: CurrentUser,
    status_: Annotated[
        Literal[tuple(STATUS_LABELS)] | None,  # type: ignore[valid-type]
        Query(alias="status"),
    ] = None,
    category: Annotated[Literal[tuple(CATEGORIES)] | None, Query()] = None,  # type: ignore[valid-type]
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[ReportPublic]:
    rows = reports.list_reports(
        _sm(request), status=status_, category=category, limit=limit, offset=offset
    )
    return [to_public(request, r) for r in rows]


@router.get("/stats", response_model=ReportStats, summary="One-week on-site confirmation rate")
def stats(
    request: Request,
    _user: CurrentUser,
    since: Annotated[datetime | None, Query(description="Filed at or after (aware)")] = None,
    until: Annotated[datetime | None, Query(description="Filed before (aware)")] = None,
) -> dict[str, Any]:
    for name, value in (("since", since), ("until", until)):
        if value is not None:
            _check_aware(name, value)
    return reports.confirmation_stats(_sm(request), since=since, until=until)


def _check_aware(name: str, value: datetime) -> None:
    """An aware time that UTC can hold (0001-01-01T00:00+14:00 is before year 1 in UTC)."""
    if value.tzinfo is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"{name}={value.isoformat()} needs a time zone (e.g. +09:00 or Z)",
        )
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"{name}={value.isoformat()} is out of range (years 1-9999 in UTC)",
        ) from None


@router.get("/{ref}", response_model=ReportPublic, responses=_ERRORS, summary="One report")
def get_report(request: Request, _user: CurrentUser, ref: RefPath) -> ReportPublic:
    row = reports.get_report(_sm(request), ref)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"report {ref} not found")
    return to_public(request, row)


@router.get(
    "/{ref}/photo",
    name="staff_report_photo",
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}, 404: _ERRORS[404]},
    response_class=Response,
    summary="The report's photo (pixels only: no EXIF, XMP or comments)",
)
def get_photo(request: Request, _user: CurrentUser, ref: RefPath) -> Response:
    photo = reports.get_photo(_sm(request), ref)
    if photo is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"report {ref} has no photo")
    mime, data = photo
    if photos.has_metadata(data):  # stored by an earlier version, before stripping
        data = photos.strip_metadata(data)[0]
    return Response(data, media_type=mime, headers={"X-Content-Type-Options": "nosniff"})


def _act(fn: Any, ref: str, **kw: Any) -> ReportRow:
    try:
        return fn(ref=ref, **kw)  # type: ignore[no-any-return]
    except KeyError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"report {ref} not found") from e
    except reports.ReportStateError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(e)) from e


@router.post(
    "/{ref}/triage", response_model=ReportPublic, responses=_ERRORS, summary="Triage a report"
)
def triage(
    request: Request, user: RequireOperator, ref: RefPath, body: TriageRequest
) -> ReportPublic:
    sm = _sm(request)
    _act(
        lambda **kw: reports.triage(sm, **kw),
        ref,
        actor=user.name,
        status=body.status,
        priority=body.priority,
        department=body.department,
        public_note=body.public_note,
    )
    return get_report(request, user, ref)


@router.post(
    "/{ref}/confirm",
    response_model=ReportPublic,
    responses=_ERRORS,
    summary="Record the on-site confirmation",
)
def confirm(
    request: Request, user: RequireOperator, ref: RefPath, body: ConfirmRequest
) -> ReportPublic:
    if body.confirmed_at is not None:
        _check_aware("confirmed_at", body.confirmed_at)
    sm = _sm(request)
    _act(
        lambda **kw: reports.confirm_on_site(sm, **kw),
        ref,
        actor=user.name,
        at=body.confirmed_at,
        public_note=body.public_note,
    )
    return get_report(request, user, ref)
