"""Alert subscriptions: validate the form, store with consent, confirm by link, change or
unsubscribe with the subscriber's own token.

The token is 32 random bytes (URL-safe); only its SHA-256 hash is stored, so the database
alone cannot be used to reach anyone's subscription page. Contact details are never logged:
log lines carry the subscription id only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud.citizen.catalog import in_city
from cloud.citizen.errors import FormError
from cloud.db.citizen import LinkKeyRow, create_tables
from cloud.db.models import SubscriptionRow

log = logging.getLogger(__name__)

KINDS = {"flood": "洪水・道路冠水", "heat": "熱中症（高温）"}
CHANNELS = {"email": "電子メール", "sms": "SMS（ショートメッセージ）"}
RADIUS_MIN_M, RADIUS_MAX_M = 100.0, 10_000.0
UNCONFIRMED_TTL = timedelta(hours=24)
# premium-rate ranges inside an allowed country code (North America's 900 and 976)
_PREMIUM = ("+1900", "+1976")
_JP_MOBILE = re.compile(r"^\+81[6789]0\d{8}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,251}\.[A-Za-z]{2,}$")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def normalise_phone(raw: str) -> str | None:
    """Japanese mobile number (060/070/080/090) or E.164 -> E.164, else None."""
    digits = re.sub(r"[\s\-‐－()（）]", "", raw.translate(_FULLWIDTH))
    if re.fullmatch(r"0[6789]0\d{8}", digits):
        return "+81" + digits[1:]
    if re.fullmatch(r"\+810[6789]0\d{8}", digits):  # +81 typed before the domestic 0
        return "+81" + digits[4:]
    if re.fullmatch(r"\+[1-9]\d{7,14}", digits):
        return digits
    return None


_FULLWIDTH = str.maketrans("０１２３４５６７８９＋", "0123456789+")


def sms_refusal(phone: str, countries: Sequence[str]) -> str | None:
    """Why ``phone`` (E.164) may not get SMS, or None: only the allowed country codes,
    in Japan only mobile numbers, never a premium-rate range."""
    allowed = ", ".join(countries)
    if not any(phone.startswith(code) for code in countries) or phone.startswith(_PREMIUM):
        return (
            f"電話番号「{phone}」には送信できません。SMSは国番号 {allowed} "
            "の携帯電話番号にのみ送ります。"
        )
    if phone.startswith("+81") and not _JP_MOBILE.match(phone):
        return f"電話番号「{phone}」は携帯電話番号（060/070/080/090）ではありません。"
    return None


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
    form: Mapping[str, str],
    kinds: list[str],
    areas: set[str],
    *,
    sms_available: bool,
    sms_countries: Sequence[str] = ("+81",),
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
        refusal = sms_refusal(phone, sms_countries) if phone is not None else None
        if phone is None:
            errors["address"] = (
                f"「{address[:30]}」は電話番号として読み取れません。"
                "携帯電話番号（例：090-1234-5678）を入力してください。"
            )
        elif refusal is not None:
            errors["address"] = refusal
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
    """Store the (unconfirmed) subscription, then send the confirmation; when sending fails
    the row is deleted again and the error propagates, so nothing half-done remains. The
    send happens outside the transaction so a slow mail server never holds a database
    write lock (SQLite) that the alert lifecycle needs."""
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
    try:
        send_confirmation(token)
    except BaseException:
        with sm() as s, s.begin():
            s.execute(delete(SubscriptionRow).where(SubscriptionRow.id == row.id))
        raise
    log.info("subscription_created id=%s channel=%s kinds=%s", row.id, row.channel, row.kinds)
    return row


def find(
    sm: sessionmaker[Session], token: str, *, unconfirmed_ttl: timedelta = UNCONFIRMED_TTL
) -> SubscriptionRow | None:
    """The subscription of ``token``; an unconfirmed one past its time is gone already."""
    if not token or len(token) > 100:
        return None
    with sm() as s:
        row = s.scalars(
            select(SubscriptionRow).where(SubscriptionRow.token_hash == token_hash(token))
        ).first()
    if row is not None and _expired(row, datetime.now(UTC) - unconfirmed_ttl):
        return None
    return row


def _expired(row: SubscriptionRow, cutoff: datetime) -> bool:
    return row.confirmed_at is None and row.unsubscribed_at is None and row.created_at < cutoff


def purge_unconfirmed(
    sm: sessionmaker[Session], *, ttl: timedelta = UNCONFIRMED_TTL, now: datetime | None = None
) -> int:
    """Delete subscriptions never confirmed within ``ttl`` (with their address)."""
    cutoff = (now or datetime.now(UTC)) - ttl
    with sm() as s, s.begin():
        result = s.execute(
            delete(SubscriptionRow).where(
                SubscriptionRow.confirmed_at.is_(None),
                SubscriptionRow.unsubscribed_at.is_(None),
                SubscriptionRow.created_at < cutoff,
            )
        )
    n = int(getattr(result, "rowcount", 0) or 0)
    if n:
        log.info("subscriptions_expired count=%s ttl_h=%s", n, ttl.total_seconds() / 3600)
    return n


def _update(sm: sessionmaker[Session], sub_id: int, **values: object) -> SubscriptionRow | None:
    with sm() as s, s.begin():
        row = s.get(SubscriptionRow, sub_id)
        if row is None:
            return None
        for k, v in values.items():
            setattr(row, k, v)
        return row


def confirm(
    sm: sessionmaker[Session], token: str, *, unconfirmed_ttl: timedelta = UNCONFIRMED_TTL
) -> SubscriptionRow | None:
    row = find(sm, token, unconfirmed_ttl=unconfirmed_ttl)
    if row is None or row.confirmed_at is not None or row.unsubscribed_at is not None:
        return row
    row = _update(sm, row.id, confirmed_at=datetime.now(UTC))
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
    row = find(sm, token)
    if row is None:
        return None
    row = _update(sm, row.id, kinds=list(kinds), area=area, lat=lat, lon=lon, radius_m=radius_m)
    if row is not None:
        log.info("subscription_changed id=%s kinds=%s", row.id, row.kinds)
    return row


def unsubscribe(sm: sessionmaker[Session], token: str) -> SubscriptionRow | None:
    """Stop the subscription named by its token or by a signed unsubscribe token."""
    row = find_for_unsubscribe(sm, token)
    if row is None or row.unsubscribed_at is not None:
        return row
    # the contact address is erased: after unsubscribing the city has no reason to keep it
    row = _update(sm, row.id, unsubscribed_at=datetime.now(UTC), address="")
    if row is not None:
        log.info("subscription_unsubscribed id=%s", row.id)
    return row


# ---- signed unsubscribe links for alert messages -----------------------------------------
# Alert messages must carry a one-step unsubscribe link, but the subscriber's token is not
# stored. Instead each message carries ``u<id>.<HMAC(key, id + token hash)>``: it can only
# unsubscribe (not show or change) that one subscription. The key is random per install,
# kept in ``citizen_link_keys``.

_UNSUB_RE = re.compile(r"^u(\d{1,12})\.([A-Za-z0-9_-]{43})$")
_keys: dict[str, bytes] = {}
_keys_lock = threading.Lock()


def link_key(sm: sessionmaker[Session]) -> bytes:
    """The install's random HMAC key (also keys the rate-limit counters)."""
    engine = sm.kw["bind"]
    cache_key = str(engine.url)
    with _keys_lock:
        if cache_key in _keys:
            return _keys[cache_key]
        create_tables(engine)
        for _ in range(2):
            with sm() as s:
                row = s.get(LinkKeyRow, 1)
                if row is not None:
                    _keys[cache_key] = bytes.fromhex(row.key)
                    return _keys[cache_key]
            try:
                with sm() as s, s.begin():
                    s.add(LinkKeyRow(id=1, key=secrets.token_hex(32), created_at=datetime.now(UTC)))
            except IntegrityError:
                continue  # another process made it first: read theirs
        raise RuntimeError("citizen link key could not be created")  # pragma: no cover


def unsubscribe_token_for(sm: sessionmaker[Session], sub: SubscriptionRow) -> str:
    """The token for ``/citizen/subscriptions/{token}/unsubscribe`` in alert messages."""
    msg = f"unsubscribe:{sub.id}:{sub.token_hash}".encode()
    mac = hmac.new(link_key(sm), msg, hashlib.sha256).digest()
    return f"u{sub.id}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def token_for(sm: sessionmaker[Session]) -> Callable[[SubscriptionRow], str]:
    """The ``token_for`` hook of ``cloud.notify.dispatcher.Dispatcher``."""
    return lambda sub: unsubscribe_token_for(sm, sub)


def find_for_unsubscribe(sm: sessionmaker[Session], token: str) -> SubscriptionRow | None:
    """The subscription of a subscriber token or of a valid signed unsubscribe token."""
    row = find(sm, token)
    if row is not None:
        return row
    m = _UNSUB_RE.match(token or "")
    if m is None:
        return None
    with sm() as s:
        row = s.get(SubscriptionRow, int(m.group(1)))
    if row is None or not hmac.compare_digest(unsubscribe_token_for(sm, row), token):
        return None
    return row
