"""A simulator export shared by the open-data tests, and the real cloud service + app."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.service import CloudService
from cloud.settings import CloudSettings
from tests.dashboards.scenario_data import Export, Loader, export_scenario


@pytest.fixture(scope="session")
def demo_export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    """The ``demo`` scenario from 00:00 to 07:12 JST: a storm with flood stages in the
    first hour, buses in service from 06:00."""
    return export_scenario(tmp_path_factory.mktemp("opendata"), "demo", days=0.3)


@dataclass
class OpenData:
    service: CloudService
    client: TestClient
    loader: Loader


@contextlib.contextmanager
def running_opendata(
    tmp_path: Path,
    detect: dict[str, Any] | None = None,
    opendata: dict[str, Any] | None = None,
) -> Iterator[OpenData]:
    """The real cloud service (SQLite store and database) and its app, not started."""
    settings = CloudSettings.from_mapping(
        {
            "environment": "test",
            "store": {"url": f"sqlite:///{tmp_path / 'telemetry.db'}"},
            "database": {"url": f"sqlite:///{tmp_path / 'akita.db'}"},
            **({"detect": detect} if detect else {}),
            **({"opendata": opendata} if opendata else {}),
        }
    )
    service = CloudService(settings)
    app = create_app(service)
    try:
        with TestClient(app) as client:
            yield OpenData(service, client, Loader(service.store, service.registry, service.alerts))
    finally:
        service.stop()


@pytest.fixture
def opendata(tmp_path: Path) -> Iterator[OpenData]:
    with running_opendata(tmp_path) as od:
        yield od
