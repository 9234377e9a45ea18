"""Liveness and readiness (unauthenticated, no secrets) and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from cloud.api.auth import ServiceDep, User, metrics_access
from cloud.api.schemas import HealthPublic

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthPublic,
    summary="Broker, store and ingest lag status",
    responses={503: {"model": HealthPublic, "description": "Broker or store down"}},
)
def health(service: ServiceDep, response: Response) -> HealthPublic:
    """``status`` is ``degraded`` (and the code 503) while the broker or the store is
    down, so a load balancer or a probe sees the outage. Never shows secrets."""
    report = HealthPublic.model_validate(service.health())
    if report.status != "ok":
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return report


@router.get(
    "/metrics",
    summary="Prometheus text: ingest rate, batch latency, dead letters, buffer depth, gaps",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(
    service: ServiceDep, _user: Annotated[User | None, Depends(metrics_access)]
) -> Response:
    """Needs a viewer token unless ``api.metrics_public`` is set (Prometheus sends it
    with ``authorization: {credentials: ...}`` in the scrape config)."""
    return Response(service.metrics_text(), media_type="text/plain; version=0.0.4")
