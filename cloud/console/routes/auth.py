"""Sign-in and sign-out."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud.console import sessions, users
from cloud.console.audit import add_event
from cloud.console.web import (
    COOKIE,
    PRE_COOKIE,
    ConsoleRoute,
    Staff,
    db,
    form_of,
    jst,
    render,
    set_cookie,
    settings_of,
)

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


def _signin_page(
    request: Request, *, status_code: int = 200, message: str | None = None, name: str = ""
) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "signin.html",
        "サインイン",
        status_code=status_code,
        message=message,
        pre_csrf=token,
        max_failures=settings_of(request).max_failures,
        values={"name": name},
    )
    set_cookie(request, response, PRE_COOKIE, token, max_age=3600)
    return response


@router.get("/signin", name="console_signin")
def signin_form(request: Request) -> HTMLResponse:
    return _signin_page(request)


@router.post("/signin", name="console_signin_submit")
async def signin(request: Request) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    pre = request.cookies.get(PRE_COOKIE, "")
    if not pre or not hmac.compare_digest(values.get("csrf", "").encode(), pre.encode()):
        return _signin_page(
            request,
            status_code=403,
            message="フォームの確認用トークンが一致しません。このページから、もう一度サインインしてください。",
        )
    name, password = values.get("name", "").strip(), values.get("password", "")
    if not name or not password:
        return _signin_page(
            request, status_code=422, message="利用者名とパスワードを入力してください。", name=name
        )
    result = users.sign_in(db(request), name, password, settings_of(request))
    if result.user is None:
        if result.locked_until is not None:
            message = (
                "パスワードの誤りが続いたため、このアカウントは "
                f"{jst(result.locked_until)} までロックされています。"
            )
            return _signin_page(request, status_code=423, message=message, name=name)
        return _signin_page(
            request,
            status_code=401,
            message="利用者名またはパスワードが違います。",
            name=name,
        )
    secret = sessions.start_session(db(request), result.user.id)
    response = RedirectResponse(request.url_for("console_overview").path, status_code=303)
    set_cookie(request, response, COOKIE, secret)
    response.delete_cookie(PRE_COOKIE, path="/console")
    return response


@router.post("/signout", name="console_signout")
async def signout(request: Request, staff: Staff) -> Response:
    await form_of(request, staff)
    sessions.end_session(db(request), staff.id)
    add_event(db(request), actor=staff.user.name, action="sign_out")
    response = RedirectResponse(request.url_for("console_signin").path + "?out=1", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response
