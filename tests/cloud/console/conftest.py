"""Console fixtures: the real app on the real cloud service (SQLite database and store in
a temporary directory), people added through the same functions as `akita cloud user`,
and a signed-in client per role that reads its CSRF token from the pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.console.users import add_user
from cloud.service import CloudService
from cloud.settings import CloudSettings

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def make_service(directory: Path, **sections: Any) -> CloudService:
    settings = CloudSettings.from_mapping(
        {
            "environment": "test",
            "store": {"url": f"sqlite:///{directory / 'telemetry.db'}"},
            "database": {"url": f"sqlite:///{directory / 'akita.db'}"},
            **sections,
        }
    )
    return CloudService(settings)


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "the page has no form with a csrf field"
    return m.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    page = client.get("/console/signin")
    return client.post(
        "/console/signin",
        data={"name": name, "password": password, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )


@dataclass
class Console:
    app: FastAPI
    service: CloudService
    tmp: Path

    def client(self, role: str | None = None) -> TestClient:
        """A new client; signed in as ``<role>-user`` when a role is given."""
        c = TestClient(self.app)
        if role is not None:
            name = f"{role}-user"
            if not any(u.name == name for u in _users(self.service)):
                add_user(
                    self.service.sessionmaker,
                    name=name,
                    role=role,
                    password=PASSWORD,
                    display_name=f"{role} 太郎",
                    actor="test",
                )
            r = sign_in(c, name)
            assert r.status_code == 303, r.text
        return c


def _users(service: CloudService) -> list[Any]:
    from cloud.console.users import list_users

    return list_users(service.sessionmaker)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    service = make_service(tmp_path)
    app = create_app(service)
    try:
        yield Console(app, service, tmp_path)
    finally:
        service.stop()


def aware(minutes_ago: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes_ago)
