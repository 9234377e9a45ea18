"""Request plumbing shared by the console pages: the signed-in person, role checks, CSRF
checks, the session cookie, and rendering.

Every POST carries the session's CSRF token in a hidden ``csrf`` field; the sign-in form,
before there is a session, uses a double-submit cookie instead. The session cookie is
HttpOnly and SameSite=Strict, and Secure whenever the request came over TLS (see
:func:`over_tls`) or ``console.secure_cookie = "always"``.
"""

from __future__ import annotations

import hmac
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader
from sqlalchemy.orm import Session, sessionmaker

from cloud.api.auth import Role
from cloud.citizen.bodies import LimitedBodyRoute
from cloud.citizen.reports import JST
from cloud.console import sessions
from cloud.console.config import ConsoleSettings, console_settings
from cloud.db.console import create_tables

COOKIE = "akita_console"
PRE_COOKIE = "akita_console_pre"  # double-submit CSRF of the sign-in form
PATH = "/console"
_HOUSEKEEPING_S = 60.0

env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def jst(dt: datetime | None) -> str:
    if dt is None:
        return "—"
    d = dt.astimezone(JST)
    return f"{d.year}/{d.month:02d}/{d.day:02d} {d.hour:02d}:{d.minute:02d}"


env.filters["jst"] = jst


class ConsoleRoute(LimitedBodyRoute):
    """Forms are read within 64 KiB before anything parses them (chunked bodies too)."""


def service_of(request: Request) -> Any:
    return request.app.state.service


def settings_of(request: Request) -> ConsoleSettings:
    override = getattr(request.app.state, "console_settings", None)
    return (
        override if isinstance(override, ConsoleSettings) else console_settings(service_of(request))
    )


def db(request: Request) -> sessionmaker[Session]:
    sm: sessionmaker[Session] = service_of(request).sessionmaker
    state = request.app.state
    if not getattr(state, "console_tables_ready", False):
        create_tables(sm.kw["bind"])  # a database made before the console existed
        state.console_tables_ready = True
    last = getattr(state, "console_housekeeping_at", None)
    if last is None or time.monotonic() - last > _HOUSEKEEPING_S:
        state.console_housekeeping_at = time.monotonic()
        sessions.prune(sm, settings_of(request))
    return sm


def over_tls(request: Request) -> bool:
    if request.url.scheme == "https":
        return True
    proxies = service_of(request).settings.api.trusted_proxies
    client = request.client.host if request.client else None
    forwarded = request.headers.get("x-forwarded-proto", "")
    return client in proxies and forwarded.split(",")[-1].strip().lower() == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, **kw: Any) -> None:
    secure = settings_of(request).secure_cookie == "always" or over_tls(request)
    response.set_cookie(
        name, value, path=PATH, httponly=True, samesite="strict", secure=secure, **kw
    )


class SignInRequired(Exception):
    """No live session: the handler redirects to the sign-in page."""


# sent by static/live.js: the page refreshing itself, not a person using it
LIVE_HEADER = "X-Akita-Live"


def current(request: Request) -> sessions.StaffSession:
    found = sessions.find_session(
        db(request),
        request.cookies.get(COOKIE, ""),
        settings_of(request),
        touch=request.headers.get(LIVE_HEADER) != "1",
    )
    if found is None:
        raise SignInRequired()
    request.state.staff = found
    return found


Staff = Annotated[sessions.StaffSession, Depends(current)]


def require(staff: sessions.StaffSession, role: Role) -> None:
    if staff.user.role.rank < role.rank:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"この操作には {role.value} 以上の権限が必要です（{staff.user.name} は "
            f"{staff.user.role.value}）",
        )


async def form_of(request: Request, staff: sessions.StaffSession) -> dict[str, str]:
    """The posted form, after checking its CSRF token against the session's."""
    form = await request.form()
    values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    if not hmac.compare_digest(values.get("csrf", "").encode(), staff.csrf_token.encode()):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="フォームの確認用トークン（csrf）がありません。ページを開き直して送信してください。",
        )
    return values


def can(staff: sessions.StaffSession | None, role: str) -> bool:
    return staff is not None and staff.user.role.rank >= Role(role).rank


def render(
    request: Request,
    name: str,
    title: str,
    *,
    status_code: int = 200,
    **ctx: Any,
) -> HTMLResponse:
    staff = getattr(request.state, "staff", None)

    def url(route: str, **params: Any) -> str:
        return request.url_for(route, **params).path

    html = env.get_template(name).render(
        request=request,
        title=title,
        url=url,
        staff=staff,
        can=lambda role: can(staff, role),
        csrf=staff.csrf_token if staff else "",
        live_refresh_s=settings_of(request).live_refresh_s,
        errors=ctx.pop("errors", {}),
        values=ctx.pop("values", {}),
        **ctx,
    )
    response = HTMLResponse(html, status_code=status_code)
    # pages are per person: never kept by a shared cache or the back button after sign-out
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = console_csp(settings_of(request))
    return response


def console_csp(settings: ConsoleSettings) -> str:
    # the app's policy, plus the map tiles' host for images; still no inline script or style
    tiles = ""
    if settings.map_tiles:
        parts = urlsplit(settings.map_tiles)
        tiles = f" {parts.scheme}://{parts.netloc}"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data:{tiles}; font-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
