"""A CloudService on SQLite files in a temp dir (no MQTT), its app, and one token per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.api.auth import Role, create_token
from cloud.service import CloudService
from cloud.settings import CloudSettings


def make_service(
    tmp: Path, *, store_url: str | None = None, db_url: str | None = None, **sections: object
) -> CloudService:
    data: dict[str, object] = {
        "environment": "test",
        "store": {"url": store_url or f"sqlite:///{tmp / 'telemetry.db'}"},
        "database": {"url": db_url or f"sqlite:///{tmp / 'akita.db'}"},
        "alerts": {"hold_off_s": 60, "min_open_s": 0},
        **sections,
    }
    return CloudService(CloudSettings.from_mapping(data, source="test"))


@pytest.fixture
def service(tmp_path: Path) -> Iterator[CloudService]:
    svc = make_service(tmp_path)
    yield svc
    svc.stop()


@pytest.fixture
def app(service: CloudService) -> FastAPI:
    return create_app(service)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def tokens(service: CloudService) -> dict[Role, str]:
    sm = service.sessionmaker
    return {role: create_token(sm, name=f"t-{role.value}", role=role) for role in Role}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
