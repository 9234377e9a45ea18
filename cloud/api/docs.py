"""The API documentation (``/openapi.json``, ``/docs``, ``/redoc``): open in
development, only to staff in production.

In production a viewer token (or better) is needed, sent as ``Authorization: Bearer``
(curl, scripts) or as the password of HTTP Basic (any user name) so a browser can open
``/docs``: it asks once, then sends the same credentials for ``/openapi.json``.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, FastAPI, HTTPException, Request, status
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, JSONResponse

from cloud.api.auth import authenticate, get_service
from cloud.api.headers import docs_csp, inline_hashes

OPENAPI_URL = "/openapi.json"
CHALLENGE = 'Basic realm="akita staff API", Bearer'


def docs_gated(request: Request) -> bool:
    return bool(get_service(request).settings.environment == "production")


def _secret(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def require_docs_access(request: Request) -> None:
    """Nothing in development; a valid staff token in production (else 401)."""
    if not docs_gated(request):
        return
    secret = _secret(request.headers.get("authorization", ""))
    if secret is None or authenticate(get_service(request).sessionmaker, secret) is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="the API documentation needs a staff token in production "
            "(Authorization: Bearer TOKEN, or the token as HTTP Basic password)",
            headers={"WWW-Authenticate": CHALLENGE},
        )


def _with_csp(page: HTMLResponse) -> HTMLResponse:
    body = bytes(page.body).decode("utf-8")
    page.headers["Content-Security-Policy"] = docs_csp(inline_hashes(body))
    return page


def docs_router(app: FastAPI) -> APIRouter:
    """The documentation routes of ``app`` (built with ``openapi_url=None``)."""
    router = APIRouter(include_in_schema=False)
    title = app.title

    @router.get(OPENAPI_URL)
    def openapi(request: Request) -> JSONResponse:
        require_docs_access(request)
        return JSONResponse(app.openapi())

    @router.get("/docs")
    def swagger(request: Request) -> HTMLResponse:
        require_docs_access(request)
        return _with_csp(
            get_swagger_ui_html(
                openapi_url=OPENAPI_URL,
                title=f"{title} - Swagger UI",
                oauth2_redirect_url="/docs/oauth2-redirect",
            )
        )

    @router.get("/docs/oauth2-redirect")
    def swagger_redirect(request: Request) -> HTMLResponse:
        require_docs_access(request)
        return _with_csp(get_swagger_ui_oauth2_redirect_html())

    @router.get("/redoc")
    def redoc(request: Request) -> HTMLResponse:
        require_docs_access(request)
        return _with_csp(get_redoc_html(openapi_url=OPENAPI_URL, title=f"{title} - ReDoc"))

    return router
