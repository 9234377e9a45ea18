"""Admin: people's accounts, API tokens (as ``/tokens`` does), notification settings
(read-only, without addresses or secrets) and the console's audit events."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud.api.auth import Role, TokenError, issue_token, list_tokens, revoke_token
from cloud.console import users
from cloud.console.audit import add_event, recent_events
from cloud.console.web import ConsoleRoute, Staff, db, form_of, render, require, service_of

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


def _notify_summary(service: Any) -> dict[str, Any]:
    """What staff may see of the notification set-up: group sizes, never an address."""
    settings = service.settings
    notify = settings.notify
    smtp = settings.smtp
    return {
        "groups": [(g.name, len(g.members)) for g in notify.groups] if notify else [],
        "routes": [(r.domain, r.min_severity.value, ", ".join(r.groups)) for r in notify.routes]
        if notify
        else [],
        "smtp": f"{smtp.host}:{smtp.port}（送信者 {smtp.sender}）" if smtp else None,
        "sms": getattr(settings.sms, "provider", None) if settings.sms else None,
        "webhook": settings.webhook is not None,
    }


def _page(
    request: Request,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    secret: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    sm = db(request)
    return render(
        request,
        "admin.html",
        "管理",
        status_code=status_code,
        people=users.list_users(sm),
        tokens=list_tokens(sm),
        notify=_notify_summary(service_of(request)),
        events=recent_events(sm, 30),
        roles=[(r.value, r.value) for r in Role],
        errors=errors or {},
        values=values or {},
        secret=secret,
    )


@router.get("/admin", name="console_admin")
def admin(request: Request, staff: Staff) -> HTMLResponse:
    require(staff, Role.ADMIN)
    return _page(request)


def _back(request: Request, done: str) -> RedirectResponse:
    return RedirectResponse(request.url_for("console_admin").path + f"?done={done}", 303)


@router.post("/admin/users", name="console_user_add")
async def user_add(request: Request, staff: Staff) -> Response:
    values = await form_of(request, staff)
    require(staff, Role.ADMIN)
    try:
        users.add_user(
            db(request),
            name=values.get("name", "").strip(),
            role=values.get("role", ""),
            password=values.get("password", ""),
            display_name=values.get("display_name", "").strip(),
            actor=staff.user.name,
        )
    except users.UserError as exc:
        field = "password" if "password" in str(exc) else "name"
        values.pop("password", None)
        return _page(request, errors={field: str(exc)}, values=values, status_code=422)
    return _back(request, "user_add")


@router.post("/admin/users/{name}", name="console_user_change")
async def user_change(request: Request, staff: Staff, name: str) -> Response:
    values = await form_of(request, staff)
    require(staff, Role.ADMIN)
    sm = db(request)
    try:
        action = values.get("action", "")
        if action == "role":
            users.set_role(sm, name, values.get("role", ""), actor=staff.user.name)
        elif action in ("disable", "enable"):
            if name == staff.user.name:
                raise users.UserError("you cannot disable yourself (ask another admin)")
            users.set_disabled(sm, name, action == "disable", actor=staff.user.name)
        elif action == "passwd":
            users.set_password(sm, name, values.get("password", ""), actor=staff.user.name)
        else:
            raise users.UserError(
                f"action {action[:20]!r} is not one of role, disable, enable, passwd"
            )
    except users.UserError as exc:
        return _page(request, errors={f"user-{name}": str(exc)}, status_code=422)
    return _back(request, "user_change")


@router.post("/admin/tokens", name="console_token_create")
async def token_create(request: Request, staff: Staff) -> Response:
    values = await form_of(request, staff)
    require(staff, Role.ADMIN)
    try:
        secret, info = issue_token(
            db(request),
            name=values.get("token_name", "").strip(),
            role=values.get("token_role", ""),
        )
    except TokenError as exc:
        return _page(request, errors={"token_name": str(exc)}, values=values, status_code=422)
    add_event(
        db(request),
        actor=staff.user.name,
        action="token_create",
        target=info.name,
        note=info.role.value,
    )
    # shown once, in this response only (no redirect: the secret must not reach a URL)
    return _page(request, secret=secret)


@router.post("/admin/tokens/{token_id}/revoke", name="console_token_revoke")
async def token_revoke(request: Request, staff: Staff, token_id: int) -> Response:
    await form_of(request, staff)
    require(staff, Role.ADMIN)
    try:
        info = revoke_token(db(request), token_id, actor=staff.user.name)
    except TokenError as exc:
        return _page(request, errors={"token_name": str(exc)}, status_code=404)
    add_event(db(request), actor=staff.user.name, action="token_revoke", target=info.name)
    return _back(request, "token_revoke")
