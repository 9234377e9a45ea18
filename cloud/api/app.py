"""``create_app(service)``: the staff API around one :class:`CloudService`."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from cloud.api import access_log, validation
from cloud.api.docs import docs_router
from cloud.api.extras import load_extra_routers
from cloud.api.headers import SecurityHeaders, app_csp, template_style_hashes
from cloud.api.routes import alerts, commands, devices, health, maintenance, tokens
from cloud.console.mount import install as install_console
from cloud.service import CloudService

DESCRIPTION = """\
Staff API of the Akita City telemetry system.

Every route except `/health` and the public pages (open data, CAP feed, citizen site)
needs `Authorization: Bearer <token>`. In production this documentation needs one too.
Roles:
**viewer** reads, **operator** also acknowledges and resolves alerts and manages
maintenance windows, **admin** also manages tokens. Make the first token with
`akita cloud token create --name NAME --role admin`.
"""


def create_app(
    service: CloudService, *, extra_routers: Sequence[APIRouter] | None = None
) -> FastAPI:
    """The app. ``extra_routers`` defaults to those of :mod:`cloud.api.extras` found."""
    app = FastAPI(
        title="Akita telemetry staff API",
        version="1",
        description=DESCRIPTION,
        # served by cloud.api.docs instead: staff only in production
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    validation.install(app)
    app.include_router(docs_router(app))
    for router in (
        health.router,
        devices.router,
        alerts.router,
        maintenance.router,
        tokens.router,
        commands.router,
    ):
        app.include_router(router)
    for router in load_extra_routers() if extra_routers is None else extra_routers:
        app.include_router(router)
    # the staff console (HTML pages under /console, people's sign-in; docs/console.md)
    install_console(app)
    app.add_middleware(
        SecurityHeaders,
        csp=app_csp(template_style_hashes()),
        trusted_proxies=service.settings.api.trusted_proxies,
    )
    access_log.install()
    return app
