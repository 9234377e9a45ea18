"""Problem reports: validate, store with a reference number, staff triage and on-site
confirmation, and the one-week confirmation rate the city reports.

The reference number is sequential, for phone calls to staff; it shows nothing publicly.
The reporter reads the status through a capability token (32 random bytes), of which only
the SHA-256 hash is stored.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from cloud.citizen.catalog import CATEGORIES, in_city
from cloud.citizen.errors import CitizenError, FormError, PhotoError
from cloud.citizen.photos import Photo, check_photo
from cloud.db.citizen import ReportPhotoRow, ReportRow

log = logging.getLogger(__name__)

JST = timezone(timedelta(hours=9))
REF_RE = re.compile(r"^AK-(\d{4})-(\d{6,})$")
MAX_DESCRIPTION = 2000
MAX_ADDRESS = 200
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,251}\.[A-Za-z]{2,}$")
CONFIRM_WINDOW = timedelta(days=7)
TRIAGE_STATUSES = ("triaged", "in_progress", "closed", "rejected")
_FULLWIDTH = str.maketrans("０１２３４５６７８９．－", "0123456789.-")


class ReportStateError(CitizenError):
    """A staff action does not fit the report's current state (e.g. confirming twice)."""


@dataclass(frozen=True)
class ReportForm:
    category: str
    subcategory: str
    description: str
    address: str | None
    lat: float | None
    lon: float | None
    location_source: str
    photo: Photo | None
    email: str | None = None  # where the status link goes; not stored


def make_ref(report_id: int, created_at: datetime) -> str:
    return f"AK-{created_at.astimezone(JST).year}-{report_id:06d}"


def _coord(raw: str | None, label: str, name: str, errors: dict[str, str]) -> float | None:
    raw = (raw or "").strip().translate(_FULLWIDTH)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        errors[name] = f"{label}は数字で入力してください（入力値：{raw[:20]}）。"
        return None


def parse_report(form: Mapping[str, str], photo_bytes: bytes | None) -> ReportForm:
    """Validate the report form and photo; raises :class:`FormError` with every bad field."""
    errors: dict[str, str] = {}
    cat_raw = (form.get("category") or "").strip()
    category, _, sub = cat_raw.partition(":")
    if category not in CATEGORIES or sub not in CATEGORIES[category][1]:
        errors["category"] = "種類（道路・河川・公園）を一覧から選んでください。"
    description = (form.get("description") or "").replace("\r\n", "\n").strip()
    if not description:
        errors["description"] = "内容を入力してください。"
    elif len(description) > MAX_DESCRIPTION:
        errors["description"] = (
            f"内容は {MAX_DESCRIPTION} 文字以内で入力してください（現在 {len(description)} 文字）。"
        )
    address = (form.get("address") or "").strip() or None
    if address and len(address) > MAX_ADDRESS:
        errors["address"] = f"住所・目印は {MAX_ADDRESS} 文字以内で入力してください。"
    lat = _coord(form.get("lat"), "緯度", "lat", errors)
    lon = _coord(form.get("lon"), "経度", "lon", errors)
    if (lat is None) != (lon is None) and "lat" not in errors and "lon" not in errors:
        errors["lat" if lat is None else "lon"] = "緯度と経度の両方を入力してください。"
    elif lat is not None and lon is not None and not in_city(lat, lon):
        errors["lat"] = f"地点（{lat}, {lon}）は秋田市の範囲外です。"
    email = (form.get("email") or "").strip() or None
    if email and (len(email) > 254 or not _EMAIL.match(email)):
        errors["email"] = f"電子メールアドレス「{email[:60]}」の形式が正しくありません。"
    photo: Photo | None = None
    if photo_bytes:
        try:
            photo = check_photo(photo_bytes)
        except PhotoError as e:
            errors["photo"] = e.message
    gps_ok = form.get("use_photo_location") == "yes"
    source = "point"
    if lat is None or lon is None:
        lat = lon = None
        if address:
            source = "address"
        elif gps_ok and photo is not None and photo.gps is not None and in_city(*photo.gps):
            # the photo's position only with the reporter's consent on the form
            lat, lon = photo.gps
            source = "exif"
        elif not any(k in errors for k in ("lat", "lon", "photo")):
            hint = ""
            if gps_ok and photo is not None and photo.gps is not None:
                hint = "（写真の位置情報は秋田市の範囲外でした）"
            elif photo is not None and photo.gps is not None:
                hint = "（写真の位置情報を使う場合は、その欄にチェックを入れてください）"
            errors["address"] = f"場所（住所・目印、または緯度・経度）を入力してください{hint}。"
    if errors:
        raise FormError(errors)
    return ReportForm(category, sub, description, address, lat, lon, source, photo, email)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_report(
    sm: sessionmaker[Session], data: ReportForm, *, now: datetime | None = None
) -> ReportRow:
    """Store the report (staff and tests: nobody gets its status token)."""
    return file_report(sm, data, now=now)[0]


def file_report(
    sm: sessionmaker[Session], data: ReportForm, *, now: datetime | None = None
) -> tuple[ReportRow, str]:
    """Store the report; returns it with the status page's capability token (shown once)."""
    now = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    with sm() as s, s.begin():
        row = ReportRow(
            category=data.category,
            subcategory=data.subcategory,
            description=data.description,
            address=data.address,
            lat=data.lat,
            lon=data.lon,
            location_source=data.location_source,
            status_token_hash=token_hash(token),
            status="received",
            created_at=now,
            updated_at=now,
        )
        if data.photo is not None:
            p = data.photo
            row.photo = ReportPhotoRow(
                mime=p.mime,
                size_bytes=len(p.data),
                width=p.width,
                height=p.height,
                sha256=p.sha256,
                # never kept apart from the report: used only as its location, by consent
                exif_lat=None,
                exif_lon=None,
                data=p.data,
            )
        s.add(row)
        s.flush()
        row.ref = make_ref(row.id, now)
    log.info(
        "report_created ref=%s category=%s/%s location=%s photo=%s",
        row.ref,
        row.category,
        row.subcategory,
        row.location_source,
        data.photo is not None,
    )
    return row, token


def get_report_by_token(sm: sessionmaker[Session], token: str) -> ReportRow | None:
    """The report whose status token is ``token`` (the reporter's capability)."""
    if not token or len(token) > 100:
        return None
    with sm() as s:
        return s.scalars(
            select(ReportRow)
            .options(selectinload(ReportRow.photo))
            .where(ReportRow.status_token_hash == token_hash(token))
        ).first()


def get_report(sm: sessionmaker[Session], ref: str) -> ReportRow | None:
    if not REF_RE.match(ref):
        return None
    with sm() as s:
        return s.scalars(
            select(ReportRow).options(selectinload(ReportRow.photo)).where(ReportRow.ref == ref)
        ).first()


def get_photo(sm: sessionmaker[Session], ref: str) -> tuple[str, bytes] | None:
    with sm() as s:
        row = s.execute(
            select(ReportPhotoRow.mime, ReportPhotoRow.data)
            .join(ReportRow)
            .where(ReportRow.ref == ref)
        ).first()
        return (row[0], row[1]) if row else None


def list_reports(
    sm: sessionmaker[Session],
    *,
    status: str | None = None,
    category: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[ReportRow]:
    q = select(ReportRow).options(selectinload(ReportRow.photo)).order_by(ReportRow.id.desc())
    if status:
        q = q.where(ReportRow.status == status)
    if category:
        q = q.where(ReportRow.category == category)
    with sm() as s:
        return list(s.scalars(q.limit(limit).offset(offset)))


def _load_for_update(s: Session, ref: str) -> ReportRow:
    row = s.scalars(
        select(ReportRow).options(selectinload(ReportRow.photo)).where(ReportRow.ref == ref)
    ).first()
    if row is None:
        raise KeyError(ref)
    return row


def triage(
    sm: sessionmaker[Session],
    ref: str,
    *,
    actor: str,
    status: str,
    priority: str | None = None,
    department: str | None = None,
    public_note: str | None = None,
    now: datetime | None = None,
) -> ReportRow:
    """Set status / priority / department. Raises KeyError (unknown ref) or
    :class:`ReportStateError`."""
    if status not in TRIAGE_STATUSES:
        raise ReportStateError(f"status={status!r} is not one of {', '.join(TRIAGE_STATUSES)}")
    now = now or datetime.now(UTC)
    with sm() as s, s.begin():
        row = _load_for_update(s, ref)
        if row.status in ("closed", "rejected") and status != row.status:
            raise ReportStateError(f"report {ref} is {row.status}; it cannot become {status}")
        if status == "triaged" and row.status in ("confirmed", "in_progress"):
            raise ReportStateError(f"report {ref} is already {row.status}")
        row.status = status
        if priority is not None:
            row.priority = priority
        if department is not None:
            row.department = department
        if public_note is not None:
            row.public_note = public_note
        if row.triaged_at is None:
            row.triaged_at, row.triaged_by = now, actor
        if status in ("closed", "rejected"):
            row.closed_at = now
        row.updated_at = now
    log.info("report_triaged ref=%s status=%s actor=%s", ref, status, actor)
    return row


def confirm_on_site(
    sm: sessionmaker[Session],
    ref: str,
    *,
    actor: str,
    at: datetime | None = None,
    public_note: str | None = None,
    now: datetime | None = None,
) -> ReportRow:
    """Record the on-site confirmation (``at`` = when staff were there, default now)."""
    now = now or datetime.now(UTC)
    at = at or now
    if at.tzinfo is None:
        raise ReportStateError("confirmed_at must carry a time zone (e.g. 2026-06-01T10:00+09:00)")
    if at > now + timedelta(minutes=5):
        raise ReportStateError(f"confirmed_at={at.isoformat()} is in the future")
    with sm() as s, s.begin():
        row = _load_for_update(s, ref)
        if row.confirmed_at is not None:
            raise ReportStateError(
                f"report {ref} was already confirmed at {row.confirmed_at.isoformat()}"
            )
        if row.status == "rejected":
            raise ReportStateError(f"report {ref} was rejected; it cannot be confirmed")
        if at < row.created_at:
            raise ReportStateError(
                f"confirmed_at={at.isoformat()} is before the report was filed "
                f"({row.created_at.isoformat()})"
            )
        row.confirmed_at, row.confirmed_by = at, actor
        if row.status in ("received", "triaged"):
            row.status = "confirmed"
        if row.triaged_at is None:
            row.triaged_at, row.triaged_by = now, actor
        if public_note is not None:
            row.public_note = public_note
        row.updated_at = now
    log.info("report_confirmed ref=%s actor=%s", ref, actor)
    return row


def confirmation_stats(
    sm: sessionmaker[Session],
    *,
    now: datetime | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """One-week on-site confirmation rate.

    Cohort: reports filed in [since, until) whose week has ended (filed at least 7 days
    before ``now``) or that are already confirmed; rejected reports (spam, out of scope)
    that were never confirmed are left out. Rate = confirmed within 7 days of filing /
    cohort. Reports still inside their first week and unconfirmed are ``pending``.
    """
    now = now or datetime.now(UTC)
    q = select(ReportRow.category, ReportRow.status, ReportRow.created_at, ReportRow.confirmed_at)
    if since is not None:
        q = q.where(ReportRow.created_at >= since)
    if until is not None:
        q = q.where(ReportRow.created_at < until)
    with sm() as s:
        rows = s.execute(q).all()

    def empty() -> dict[str, Any]:
        return {"eligible": 0, "confirmed_within_week": 0, "pending": 0, "rejected": 0}

    total = empty()
    per_cat: dict[str, dict[str, Any]] = {c: empty() for c in CATEGORIES}
    hours: list[float] = []
    for category, status, created, confirmed in rows:
        buckets = (total, per_cat.setdefault(category, empty()))
        if confirmed is None and status == "rejected":
            key = "rejected"
        elif confirmed is None and now - created < CONFIRM_WINDOW:
            key = "pending"
        else:
            key = "eligible"
        for b in buckets:
            b[key] += 1
        if key == "eligible" and confirmed is not None:
            hours.append((confirmed - created).total_seconds() / 3600)
            if confirmed - created <= CONFIRM_WINDOW:
                for b in buckets:
                    b["confirmed_within_week"] += 1
    for b in (total, *per_cat.values()):
        b["rate"] = round(b["confirmed_within_week"] / b["eligible"], 4) if b["eligible"] else None
    hours.sort()
    return {
        "window_days": CONFIRM_WINDOW.days,
        "computed_at": now.isoformat(),
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "reports": len(rows),
        **total,
        "median_hours_to_confirm": round(hours[len(hours) // 2], 2) if hours else None,
        "by_category": per_cat,
    }
