"""Alert subscriptions: validate the form, store with consent, confirm by link, change or
unsubscribe with the subscriber's own token.

The token is 32 random bytes (URL-safe); only its SHA-256 hash is stored, so the database
alone cannot be used to reach anyone's subscription page. Contact details are never logged:
log lines carry the subscription id only.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.citizen.catalog import in_city
from cloud.citizen.errors import FormError
from cloud.db.models import SubscriptionRow

log = logging.getLogger(__name__)

KINDS = {"flood": "洪水・道路冠水", "heat": "熱中症（高温）"}
CHANNELS = {"email": "電子メール", "sms": "SMS（ショートメッセージ）"}
RADIUS_MIN_M, RADIUS_MAX_M = 100.0, 10_000.0
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,251}\.[A-Za-z]{2,}$")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def normalise_phone(raw: str) -> str | None:
    """Japanese mobile number (070/080/090) or E.164 -> E.164, else None."""
    digits = re.sub(r"[\s\-‐－()（）]", "", raw.translate(_FULLWIDTH))
    if re.fullmatch(r"0[789]0\d{8}", digits):
        return "+81" + digits[1:]
    if re.fullmatch(r"\+[1-9]\d{7,14}", digits):
        return digits
    return None


_FULLWIDTH = str.maketrans("０１２３４５６７８９＋", "0123456789+")


def mask_address(channel: str, address: str) -> str:
    """What the subscription page shows: enough to recognise, not enough to harvest."""
    if not address:
        return "（削除済み）"
    if channel == "email":
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{address[:-4].rstrip()[:3]}****{address[-4:]}"


@dataclass(frozen=True)
class SubscriptionForm:
    channel: str
    address: str
    kinds: tuple[str, ...]
    area: str | None
    lat: float | None
    lon: float | None
    radius_m: float | None


def _float(form: Mapping[str, str], name: str, label: str, errors: dict[str, str]) -> float | None:
    raw = (form.get(name) or "").strip().translate(_FULLWIDTH)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        errors[name] = f"{label}は数字で入力してください（入力値：{raw[:20]}）。"
        return None


def parse_area(
    form: Mapping[str, str], areas: set[str], errors: dict[str, str]
) -> tuple[str | None, float | None, float | None, float | None]:
    """Town name or point + radius, shared by the subscribe and change forms."""
    area = (form.get("area") or "").strip()
    lat = _float(form, "lat", "緯度", errors)
    lon = _float(form, "lon", "経度", errors)
    radius = _float(form, "radius_m", "半径", errors)
    if area:
        if area not in areas:
            errors["area"] = (
                f"「{area[:40]}」は登録できる地域ではありません。一覧から選んでください。"
            )
        return area, None, None, None
    if "lat" in errors or "lon" in errors:
        return None, None, None, None
    if lat is None and lon is None:
        errors["area"] = "地域を選ぶか、地点（緯度・経度）を入力してください。"
        return None, None, None, None
    if lat is None or lon is None:
        errors["lat" if lat is None else "lon"] = "緯度と経度の両方を入力してください。"
        return None, None, None, None
    if not in_city(lat, lon):
        errors["lat"] = f"地点（{lat}, {lon}）は秋田市の範囲外です。"
        return None, None, None, None
    if radius is None:
        radius = 1000.0
    elif not RADIUS_MIN_M <= radius <= RADIUS_MAX_M:
        errors["radius_m"] = (
            f"半径は {RADIUS_MIN_M:.0f}〜{RADIUS_MAX_M:.0f} メートルで入力してください"
            f"（入力値：{radius:g}）。"
        )
    return None, lat, lon, radius


def parse_kinds(values: list[str], errors: dict[str, str]) -> tuple[str, ...]:
    kinds = tuple(k for k in KINDS if k in values)
    unknown = [v for v in values if v not in KINDS]
    if unknown or not kinds:
        errors["kinds"] = "受け取る情報（洪水・熱中症）を1つ以上選んでください。"
    return kinds


def parse_subscription(
    form: Mapping[str, str], kinds: list[str], areas: set[str], *, sms_available: bool
) -> SubscriptionForm:
    """Validate the subscription form; raises :class:`FormError` with every bad field."""
    errors: dict[str, str] = {}
    channel = (form.get("channel") or "").strip()
    address = (form.get("address") or "").strip()
    if channel not in CHANNELS:
        errors["channel"] = "受け取り方法（電子メールまたはSMS）を選んでください。"
    elif channel == "sms" and not sms_available:
        errors["channel"] = "現在、SMSでの登録は受け付けていません。電子メールを選んでください。"
    if not address:
        errors["address"] = "連絡先を入力してください。"
    elif channel == "email":
        if not _EMAIL.match(address) or len(address) > 254:
            errors["address"] = "電子メールアドレスの形式が正しくありません。"
    elif channel == "sms":
        phone = normalise_phone(address)
        if phone is None:
            errors["address"] = "携帯電話番号（例：090-1234-5678）を入力してください。"
        else:
            address = phone
    kinds_t = parse_kinds(kinds, errors)
    area, lat, lon, radius = parse_area(form, areas, errors)
    if form.get("consent") != "yes":
        errors["consent"] = "利用規約と個人情報の取り扱いに同意してください。"
    if errors:
        raise FormError(errors)
    return SubscriptionForm(channel, address, kinds_t, area, lat, lon, radius)


def create(
    sm: sessionmaker[Session],
    data: SubscriptionForm,
    send_confirmation: Callable[[str], None],
    *,
    now: datetime | None = None,
) -> SubscriptionRow:
    """Store the subscription and send the confirmation in one transaction: when sending
    fails the row is rolled back (the error propagates), so nothing half-done remains."""
    now = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    with sm() as s, s.begin():
        row = SubscriptionRow(
            channel=data.channel,
            address=data.address,
            area=data.area,
            lat=data.lat,
            lon=data.lon,
            radius_m=data.radius_m,
            kinds=list(data.kinds),
            lang="ja",
            token_hash=token_hash(token),
            consent_at=now,
            created_at=now,
        )
        s.add(row)
        s.flush()
        send_confirmation(token)
    log.info("subscription_created id=%s channel=%s kinds=%s", row.id, row.channel, row.kinds)
    return row


def find(sm: sessionmaker[Session], token: str) -> SubscriptionRow | None:
    if not token or len(token) > 100:
        return None
    with sm() as s:
        return s.scalars(
            select(SubscriptionRow).where(SubscriptionRow.token_hash == token_hash(token))
        ).first()


def _update(sm: sessionmaker[Session], token: str, **values: object) -> SubscriptionRow | None:
    with sm() as s, s.begin():
        row = s.scalars(
            select(SubscriptionRow).where(SubscriptionRow.token_hash == token_hash(token))
        ).first()
        if row is None:
            return None
        for k, v in values.items():
            setattr(row, k, v)
        return row


def confirm(sm: sessionmaker[Session], token: str) -> SubscriptionRow | None:
    row = find(sm, token)
    if row is None or row.confirmed_at is not None or row.unsubscribed_at is not None:
        return row
    row = _update(sm, token, confirmed_at=datetime.now(UTC))
    if row is not None:
        log.info("subscription_confirmed id=%s", row.id)
    return row


def change(
    sm: sessionmaker[Session],
    token: str,
    kinds: tuple[str, ...],
    area: str | None,
    lat: float | None,
    lon: float | None,
    radius_m: float | None,
) -> SubscriptionRow | None:
    row = _update(sm, token, kinds=list(kinds), area=area, lat=lat, lon=lon, radius_m=radius_m)
    if row is not None:
        log.info("subscription_changed id=%s kinds=%s", row.id, row.kinds)
    return row


def unsubscribe(sm: sessionmaker[Session], token: str) -> SubscriptionRow | None:
    row = find(sm, token)
    if row is None or row.unsubscribed_at is not None:
        return row
    # the contact address is erased: after unsubscribing the city has no reason to keep it
    row = _update(sm, token, unsubscribed_at=datetime.now(UTC), address="")
    if row is not None:
        log.info("subscription_unsubscribed id=%s", row.id)
    return row
