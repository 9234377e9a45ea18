"""Resident-facing HTML pages under ``/citizen`` (server-rendered, no JavaScript needed).

Needs ``request.app.state.service`` with ``.sessionmaker``, ``.store`` (may be None),
``.email`` (an EmailChannel or None) and ``.settings``; SMS is offered only when the
service carries an SMS channel (``service.sms`` or ``service.notifier.sms``).
Jinja2 autoescaping is on for every template: whatever a resident typed is shown as text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from cloud.citizen import limits, reports, subscriptions
from cloud.citizen.bodies import LimitedBodyRoute
from cloud.citizen.catalog import CATEGORIES, STATUS_LABELS, category_label, known_areas
from cloud.citizen.catalog import load_procedures as _procedures
from cloud.citizen.config import CitizenSettings
from cloud.citizen.errors import FormError
from cloud.citizen.flood import flood_status
from cloud.citizen.links import public_base
from cloud.citizen.photos import MAX_PHOTO_BYTES
from cloud.db.citizen import create_tables
from cloud.opendata.public import public_kinds
from cloud.shelters import ATTRIBUTION

log = logging.getLogger(__name__)


class _CitizenRoute(LimitedBodyRoute):
    """Every citizen route reads its body within a limit before parsing (chunked too)."""

    def body_limit(self, request: Request) -> int:
        if self.name == "citizen_report_submit":
            return _MAX_BODY
        return _citizen_settings(request).max_form_bytes

    def refused(self, request: Request, status: int, reason: str) -> Response:
        if status == 413 and self.name == "citizen_report_submit":
            return _report_page(
                request,
                errors={
                    "photo": f"写真のサイズが大きすぎます。{MAX_PHOTO_BYTES // 1024 // 1024} MB "
                    "以下にしてください。"
                },
                status_code=413,
            )
        text = (
            "送信された内容が大きすぎます。入力内容を短くしてください。"
            if status == 413
            else "送信された内容を読み取れませんでした。もう一度お試しください。"
        )
        return render(
            request, "message.html", "送信できませんでした", status_code=status, paragraphs=[text]
        )


router = APIRouter(
    prefix="/citizen", tags=["citizen"], include_in_schema=False, route_class=_CitizenRoute
)

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
# slack for the multipart framing and the text fields around the photo
_MAX_BODY = MAX_PHOTO_BYTES + 256 * 1024


def jst(dt: datetime | None) -> str:
    if dt is None:
        return ""
    d = dt.astimezone(reports.JST)
    return f"{d.year}年{d.month}月{d.day}日 {d.hour:02d}:{d.minute:02d}"


def _service(request: Request) -> Any:
    return request.app.state.service


def _citizen_settings(request: Request) -> CitizenSettings:
    settings = getattr(getattr(_service(request), "settings", None), "citizen", None)
    return settings if isinstance(settings, CitizenSettings) else CitizenSettings()


def _ttl(request: Request) -> timedelta:
    return timedelta(hours=_citizen_settings(request).unconfirmed_ttl_h)


_HOUSEKEEPING_S = 60.0


def _sm(request: Request) -> sessionmaker[Session]:
    sm: sessionmaker[Session] = _service(request).sessionmaker
    state = request.app.state
    if not getattr(state, "citizen_tables_ready", False):
        # the citizen tables may be newer than the database the service created
        create_tables(sm.kw["bind"])
        state.citizen_tables_ready = True
    last = getattr(state, "citizen_housekeeping_at", None)
    if last is None or time.monotonic() - last > _HOUSEKEEPING_S:
        # expired unconfirmed subscriptions are deleted, not just hidden (at most once a
        # minute per process; find() already ignores them in between)
        state.citizen_housekeeping_at = time.monotonic()
        subscriptions.purge_unconfirmed(sm, ttl=_ttl(request))
        limits.prune(sm)
    return sm


def _sms_channel(request: Request) -> Any | None:
    svc = _service(request)
    sms = getattr(svc, "sms", None)
    if sms is None:
        sms = getattr(getattr(svc, "notifier", None), "sms", None)
    return sms if callable(getattr(sms, "send", None)) else None


def _public_base(request: Request) -> str:
    """Base of links sent by mail/SMS: ``api.public_url``, never the request's Host."""
    return public_base(getattr(_service(request), "settings", None))


def render(
    request: Request, name: str, title: str, *, status_code: int = 200, **ctx: Any
) -> HTMLResponse:
    def url(route: str, **params: Any) -> str:
        return request.url_for(route, **params).path

    ctx.setdefault("errors", {})
    ctx.setdefault("values", {})
    html = _env.get_template(name).render(request=request, title=title, url=url, jst=jst, **ctx)
    return HTMLResponse(html, status_code=status_code)


def _not_found(request: Request, what: str) -> HTMLResponse:
    return render(
        request,
        "message.html",
        "ページが見つかりません",
        status_code=404,
        paragraphs=[f"{what}が見つかりません。アドレスをもう一度ご確認ください。"],
        link={"href": request.url_for("citizen_home").path, "text": "トップページへ戻る"},
    )


def _form_values(form: Any) -> dict[str, str]:
    return {k: v for k, v in form.multi_items() if isinstance(v, str)}


@router.get("/", response_class=HTMLResponse, name="citizen_home")
def home(request: Request) -> HTMLResponse:
    return render(request, "index.html", "市民向けサービス")


# ---- alert subscriptions -------------------------------------------------------------


def _subscribe_page(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    kinds: list[str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "subscribe.html",
        "防災情報のメール・SMS登録",
        status_code=status_code,
        values=values or {},
        errors=errors or {},
        areas=known_areas(_sm(request), public_kinds(_service(request))),
        channels=subscriptions.CHANNELS,
        kinds=subscriptions.KINDS,
        selected_kinds=kinds if kinds is not None else ["flood", "heat"],
        sms_available=_sms_channel(request) is not None,
    )


@router.get("/subscribe", response_class=HTMLResponse, name="citizen_subscribe_form")
def subscribe_form(request: Request) -> HTMLResponse:
    return _subscribe_page(request)


def _confirmation_sender(
    request: Request, data: subscriptions.SubscriptionForm
) -> Callable[[str], None]:
    base = _public_base(request)

    def send(token: str) -> None:
        link = base + request.app.url_path_for("citizen_confirm_page", token=token)
        manage = base + request.app.url_path_for("citizen_subscription", token=token)
        if data.channel == "email":
            _service(request).email.send(
                data.address,
                "【秋田市】防災情報の配信登録の確認",
                "秋田市の防災情報（メール配信）への登録を受け付けました。\n"
                "次のリンクを開き、「登録を確定する」ボタンを押すと配信が始まります。\n\n"
                f"{link}\n\n"
                "登録内容の確認・変更・配信停止はこちら（このリンクは他の人に教えないでください）：\n"
                f"{manage}\n\n"
                "このメールに心当たりがない場合は、何もせずに削除してください。登録は確定しません。\n"
                "秋田市",
            )
        else:
            _sms_channel(request).send(  # type: ignore[union-attr]
                data.address, f"秋田市防災情報の登録確認：次のリンクを開いて確定してください {link}"
            )

    return send


@router.post("/subscribe", response_class=HTMLResponse, name="citizen_subscribe")
async def subscribe(request: Request) -> HTMLResponse:
    form = await request.form()
    values = _form_values(form)
    kinds = [str(k) for k in form.getlist("kinds")]
    sm = _sm(request)
    areas = {
        t for towns in known_areas(sm, public_kinds(_service(request))).values() for t in towns
    }
    sms_ok = _sms_channel(request) is not None
    conf = _citizen_settings(request)
    try:
        data = subscriptions.parse_subscription(
            values, kinds, areas, sms_available=sms_ok, sms_countries=conf.sms_countries
        )
        if data.channel == "email" and _service(request).email is None:
            raise FormError({"channel": "現在、電子メールでの登録は受け付けていません。"})
    except FormError as e:
        return _subscribe_page(
            request, values=values, kinds=kinds, errors=e.errors, status_code=422
        )
    try:
        await run_in_threadpool(limits.take, sm, _confirmation_limits(request, data, conf))
    except limits.RateLimited as e:
        return _rate_limited_page(request, values, kinds, e)
    from cloud.notify.errors import NotifyError

    try:
        await run_in_threadpool(subscriptions.create, sm, data, _confirmation_sender(request, data))
    except NotifyError as e:
        log.warning("subscription_confirmation_failed channel=%s reason=%s", data.channel, e)
        return render(
            request,
            "message.html",
            "確認用のリンクを送信できませんでした",
            status_code=503,
            paragraphs=[
                "確認用のリンクを送信できなかったため、登録は行われていません。",
                "連絡先に誤りがないか確認し、時間をおいてもう一度お試しください。",
            ],
            link={"href": request.url_for("citizen_subscribe_form").path, "text": "登録画面へ戻る"},
        )
    where = "電子メール" if data.channel == "email" else "SMS"
    return render(
        request,
        "message.html",
        "確認用のリンクを送信しました",
        paragraphs=[
            f"入力された連絡先に、確認用のリンクを{where}で送りました。",
            "リンクを開いて「登録を確定する」ボタンを押すと、配信が始まります。",
            "しばらくたっても届かない場合は、迷惑メールフォルダーもご確認ください。",
        ],
    )


def _confirmation_limits(
    request: Request, data: subscriptions.SubscriptionForm, conf: CitizenSettings
) -> list[limits.Limit]:
    ip = limits.client_key(request.client.host if request.client else None)
    return [
        limits.Limit("address", data.address, conf.confirmations_per_address_per_hour),
        limits.Limit("ip", ip, conf.confirmations_per_ip_per_hour),
    ]


def _rate_limited_page(
    request: Request, values: dict[str, str], kinds: list[str], e: limits.RateLimited
) -> HTMLResponse:
    if e.scope == "address":
        errors = {
            "address": f"この連絡先には1時間に{e.per_hour}回まで確認用のリンクを送ります。"
            "届いたリンクを開くか、1時間ほどたってからもう一度お試しください。"
        }
    else:
        errors = {
            "address": f"この接続元からの登録は1時間に{e.per_hour}件までです。"
            "1時間ほどたってからもう一度お試しください。"
        }
    response = _subscribe_page(request, values=values, kinds=kinds, errors=errors, status_code=429)
    response.headers["Retry-After"] = "3600"
    return response


def _urls(request: Request, token: str) -> dict[str, Any]:
    return {
        "manage_url": request.url_for("citizen_subscription", token=token).path,
        "confirm_url": request.url_for("citizen_confirm", token=token).path,
        "unsubscribe_url": request.url_for("citizen_unsubscribe", token=token).path,
    }


@router.get(
    "/subscriptions/{token}/confirm", response_class=HTMLResponse, name="citizen_confirm_page"
)
def confirm_page(request: Request, token: str) -> HTMLResponse:
    # GET only shows a button: mail scanners that prefetch links must not confirm
    sub = subscriptions.find(_sm(request), token, unconfirmed_ttl=_ttl(request))
    if sub is None:
        return _not_found(request, "登録")
    return render(request, "confirm.html", "登録の確定", sub=sub, **_urls(request, token))


@router.post("/subscriptions/{token}/confirm", response_class=HTMLResponse, name="citizen_confirm")
def confirm(request: Request, token: str) -> Response:
    sub = subscriptions.confirm(_sm(request), token, unconfirmed_ttl=_ttl(request))
    if sub is None:
        return _not_found(request, "登録")
    return render(
        request,
        "message.html",
        "登録が完了しました",
        paragraphs=["防災情報の配信登録が完了しました。次の情報からお知らせします。"],
        link={
            "href": _urls(request, token)["manage_url"],
            "text": "登録内容の確認・変更・配信停止",
        },
    )


def _subscription_page(
    request: Request,
    token: str,
    sub: Any,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    kinds: list[str] | None = None,
    saved: bool = False,
    status_code: int = 200,
) -> HTMLResponse:
    if values is None:
        values = {"area": sub.area or ""}
        if sub.lat is not None:
            values |= {"lat": str(sub.lat), "lon": str(sub.lon), "radius_m": f"{sub.radius_m:g}"}
    if sub.unsubscribed_at:
        state = "配信停止済み"
    elif sub.confirmed_at:
        state = "配信中"
    else:
        state = "確認待ち（届いたリンクから登録を確定してください）"
    return render(
        request,
        "subscription.html",
        "登録内容の確認・変更",
        status_code=status_code,
        sub=sub,
        state=state,
        masked=subscriptions.mask_address(sub.channel, sub.address),
        channels=subscriptions.CHANNELS,
        kinds=subscriptions.KINDS,
        selected_kinds=kinds if kinds is not None else list(sub.kinds),
        areas=known_areas(_sm(request), public_kinds(_service(request))),
        values=values,
        errors=errors or {},
        saved=saved,
        **_urls(request, token),
    )


@router.get("/subscriptions/{token}", response_class=HTMLResponse, name="citizen_subscription")
def subscription(request: Request, token: str, saved: bool = False) -> HTMLResponse:
    sub = subscriptions.find(_sm(request), token, unconfirmed_ttl=_ttl(request))
    if sub is None:
        return _not_found(request, "登録")
    return _subscription_page(request, token, sub, saved=saved)


@router.post(
    "/subscriptions/{token}", response_class=HTMLResponse, name="citizen_subscription_change"
)
async def subscription_change(request: Request, token: str) -> Response:
    sm = _sm(request)
    sub = subscriptions.find(sm, token, unconfirmed_ttl=_ttl(request))
    if sub is None:
        return _not_found(request, "登録")
    if sub.unsubscribed_at is not None:
        return _subscription_page(request, token, sub, status_code=409)
    form = await request.form()
    values = _form_values(form)
    kinds = [str(k) for k in form.getlist("kinds")]
    errors: dict[str, str] = {}
    kinds_t = subscriptions.parse_kinds(kinds, errors)
    areas = {
        t for towns in known_areas(sm, public_kinds(_service(request))).values() for t in towns
    }
    area, lat, lon, radius = subscriptions.parse_area(values, areas, errors)
    if errors:
        return _subscription_page(
            request, token, sub, errors=errors, values=values, kinds=kinds, status_code=422
        )
    subscriptions.change(sm, token, kinds_t, area, lat, lon, radius)
    url = request.url_for("citizen_subscription", token=token).path + "?saved=1"
    return RedirectResponse(url, status_code=303)


@router.get(
    "/subscriptions/{token}/unsubscribe",
    response_class=HTMLResponse,
    name="citizen_unsubscribe_page",
)
def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    sub = subscriptions.find_for_unsubscribe(_sm(request), token)
    if sub is None:
        return _not_found(request, "登録")
    return render(request, "unsubscribe.html", "配信の停止", sub=sub, **_urls(request, token))


@router.post(
    "/subscriptions/{token}/unsubscribe", response_class=HTMLResponse, name="citizen_unsubscribe"
)
def unsubscribe(request: Request, token: str) -> HTMLResponse:
    # one step: a POST here (the page's button, or a mail client's one-click POST) stops it
    sub = subscriptions.unsubscribe(_sm(request), token)
    if sub is None:
        return _not_found(request, "登録")
    return render(request, "unsubscribe.html", "配信の停止", sub=sub, **_urls(request, token))


# ---- problem reports -----------------------------------------------------------------


def _report_page(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "report_form.html",
        "道路・河川・公園の不具合の通報",
        status_code=status_code,
        values=values or {},
        errors=errors or {},
        categories=CATEGORIES,
        max_description=reports.MAX_DESCRIPTION,
        max_photo_mb=MAX_PHOTO_BYTES // 1024 // 1024,
    )


@router.get("/reports/new", response_class=HTMLResponse, name="citizen_report_form")
def report_form(request: Request) -> HTMLResponse:
    return _report_page(request)


@router.post("/reports", response_class=HTMLResponse, name="citizen_report_submit")
async def report_submit(request: Request) -> Response:
    # the body was read within _MAX_BODY by _CitizenRoute, chunked or not, in memory
    form = await request.form()
    values = _form_values(form)
    photo = form.get("photo")
    data: bytes | None = None
    if isinstance(photo, UploadFile) and (photo.filename or photo.size):
        data = await photo.read(MAX_PHOTO_BYTES + 1)
    sm = _sm(request)
    try:
        parsed = await run_in_threadpool(reports.parse_report, values, data)
    except FormError as e:
        return _report_page(request, values=values, errors=e.errors, status_code=422)
    row, token = await run_in_threadpool(reports.file_report, sm, parsed)
    mailed = ""
    if parsed.email:
        mailed = (
            "1"
            if await run_in_threadpool(_mail_status_link, request, parsed.email, row, token)
            else "0"
        )
    url = request.url_for("citizen_report_status", token=token).path + "?created=1"
    if mailed:
        url += f"&mailed={mailed}"
    return RedirectResponse(url, status_code=303)


def _mail_status_link(request: Request, address: str, row: Any, token: str) -> bool:
    """Send the reporter the status link; False (logged, no address) when that failed."""
    from cloud.notify.errors import NotifyError

    channel = _service(request).email
    if channel is None:
        return False
    link = _public_base(request) + request.app.url_path_for("citizen_report_status", token=token)
    try:
        channel.send(
            address,
            f"【秋田市】通報を受け付けました（受付番号 {row.ref}）",
            "秋田市への通報を受け付けました。ありがとうございます。\n\n"
            f"受付番号：{row.ref}（お電話でのお問い合わせの際にお伝えください）\n\n"
            "対応状況は次のリンクから確認できます（このリンクは他の人に教えないでください）：\n"
            f"{link}\n\n"
            "このメールに心当たりがない場合は、何もせずに削除してください。\n"
            "秋田市",
        )
    except NotifyError as e:
        log.warning("report_status_mail_failed ref=%s reason=%s", row.ref, e)
        return False
    return True


@router.get("/reports", response_class=HTMLResponse, name="citizen_report_lookup")
def report_lookup(request: Request, code: str | None = None) -> Response:
    """The status by the code of the status link; a reference number alone shows nothing
    (it is sequential: anyone could read every report)."""
    if code is None:
        return render(request, "report_lookup.html", "通報の対応状況の確認")
    code = code.strip().rsplit("/", 1)[-1]  # the whole link pasted is fine too
    if reports.get_report_by_token(_sm(request), code) is None:
        shown = code[:12] + ("…" if len(code) > 12 else "")
        return render(
            request,
            "report_lookup.html",
            "通報の対応状況の確認",
            status_code=404,
            values={"code": code[:100]},
            errors={"code": f"確認コード「{shown}」の通報は見つかりません。"},
        )
    return RedirectResponse(request.url_for("citizen_report_status", token=code).path, 303)


@router.get("/reports/status/{token}", response_class=HTMLResponse, name="citizen_report_status")
def report_status(
    request: Request, token: str, created: bool = False, mailed: str | None = None
) -> HTMLResponse:
    row = reports.get_report_by_token(_sm(request), token)
    if row is None:
        return _not_found(request, "通報")
    return render(
        request,
        "report_status.html",
        "通報の対応状況",
        report=row,
        created=created,
        mailed=mailed,
        status_url=_public_base(request)
        + request.url_for("citizen_report_status", token=token).path,
        category=category_label(row.category, row.subcategory),
        status_label=STATUS_LABELS.get(row.status, row.status),
    )


@router.get("/reports/{ref}", response_class=HTMLResponse, name="citizen_report_by_ref")
def report_by_ref(request: Request, ref: str) -> HTMLResponse:
    # no lookup at all: the answer must not even tell whether the reference exists
    return render(
        request,
        "message.html",
        "この方法では確認できません",
        status_code=404,
        paragraphs=[
            "受付番号だけでは、通報の対応状況は表示できません。",
            "受付時の画面またはメールでお知らせした確認用リンクから確認してください。"
            "リンクがわからない場合は、受付番号をお伝えのうえ市役所までお電話ください。",
        ],
        link={
            "href": request.url_for("citizen_report_lookup").path,
            "text": "確認コードで確認する",
        },
    )


# ---- procedure guide and flood status --------------------------------------------------


@router.get("/procedures", response_class=HTMLResponse, name="citizen_procedures")
def procedures(request: Request, event: str | None = None) -> HTMLResponse:
    guide = _procedures()
    chosen = guide.event(event) if event else None
    errors = {}
    if event and chosen is None:
        errors["event"] = "ライフイベントを一覧から選んでください。"
    return render(
        request,
        "procedures.html",
        "ライフイベント別の手続き案内",
        status_code=404 if errors else 200,
        guide=guide,
        event=chosen,
        errors=errors,
    )


@router.get("/flood", response_class=HTMLResponse, name="citizen_flood")
def flood(request: Request) -> HTMLResponse:
    from cloud.citizen.flood_images import flood_pictures  # it imports this module

    svc = _service(request)
    sensors = flood_status(_sm(request), getattr(svc, "store", None))
    return render(
        request,
        "flood.html",
        "現在の道路冠水の状況",
        sensors=sensors,
        pictures=flood_pictures(request, sensors),
        now=datetime.now(UTC),
        attribution=ATTRIBUTION,
    )
