"""``create_app(service)``: the staff API around one :class:`CloudService`."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from cloud.api.extras import load_extra_routers
from cloud.api.routes import alerts, devices, health, maintenance, tokens
from cloud.service import CloudService

DESCRIPTION = """\
Staff API of the Akita City telemetry system.

Every route except `/health` needs `Authorization: Bearer <token>`. Roles:
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
    )
    app.state.service = service
    for router in (
        health.router,
        devices.router,
        alerts.router,
        maintenance.router,
        tokens.router,
    ):
        app.include_router(router)
    for router in load_extra_routers() if extra_routers is None else extra_routers:
        app.include_router(router)
    return app
