"""Shared fixtures: real Mosquitto and InfluxDB servers, unique topics and databases.

``mosquitto`` is per test (tests stop and restart it); ``influx`` is one server per
session with a fresh database name per test (``influx_db``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Influx, Mosquitto, running_influx, running_mosquitto


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    d = tmp_path / "mosquitto"
    d.mkdir()
    with running_mosquitto(d) as m:
        yield m


@pytest.fixture(scope="session")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influx]:
    with running_influx(tmp_path_factory.mktemp("influxdb")) as i:
        yield i


@pytest.fixture
def influx_db(influx: Influx) -> str:
    """A database name unique to this test (created by the code under test or by the test)."""
    return f"akita_test_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> str:
    """A short unique token for topics, gateway ids and database names."""
    return uuid.uuid4().hex[:8]
