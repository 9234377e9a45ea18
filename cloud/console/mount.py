"""``install(app)``: mount the console's routers on the staff API app, with its error
pages (HTML in Japanese for /console paths; every other path keeps FastAPI's JSON)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloud.console.routes import (
    admin,
    alerts,
    auth,
    cameras,
    devices,
    maintenance,
    overview,
    reports,
)
from cloud.console.web import PATH, SignInRequired, render

ROUTERS = (
    auth.router,
    overview.router,
    alerts.router,
    devices.router,
    cameras.router,
    reports.router,
    maintenance.router,
    admin.router,
)


async def _sign_in_first(request: Request, exc: Exception) -> Response:
    target = request.url_for("console_signin").path
    if request.cookies.get("akita_console"):
        target += "?expired=1"  # a cookie the server no longer knows: idle or ended
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie("akita_console", path=PATH)
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    path = request.url.path
    if not (path == PATH or path.startswith(PATH + "/")) or path.startswith(PATH + "/static/"):
        return await http_exception_handler(request, exc)
    titles = {403: "この操作はできません", 404: "ページが見つかりません"}
    return render(
        request,
        "message.html",
        titles.get(exc.status_code, "エラー"),
        status_code=exc.status_code,
        message=str(exc.detail),
    )


def install(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(SignInRequired, _sign_in_first)
    app.add_exception_handler(StarletteHTTPException, _http_error)
