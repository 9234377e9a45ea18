"""Shared fixtures: real Mosquitto, InfluxDB and PostgreSQL servers, unique topics and
databases.

``mosquitto`` is per test (tests stop and restart it); ``influx`` is one server per
session with a fresh database name per test (``influx_db``); ``postgres`` is one server
per session with a fresh database per test (``pg_url``). ``db_url`` runs a test once on
SQLite and once on PostgreSQL (the relational store's two engines).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import (
    Influx,
    Mosquitto,
    Postgres,
    running_influx,
    running_mosquitto,
    running_postgres,
)


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """Put the root logger back after each test. A CLI run in-process sets up logging
    on the stream of that moment (pytest's capture, CliRunner's buffer); left installed,
    a background thread of a later test (aiosmtpd's loop) logs into the closed stream
    and prints "--- Logging error ---" into the run."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    named = {n: logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access")}
    kept = {n: (lg.handlers[:], lg.propagate) for n, lg in named.items()}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for n, lg in named.items():
        lg.handlers[:], lg.propagate = kept[n]


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


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with running_postgres() as pg:
        yield pg


@pytest.fixture
def pg_url(postgres: Postgres) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test (dropped afterwards)."""
    name = f"akita_test_{uuid.uuid4().hex[:10]}"
    url = postgres.create_database(name)
    yield url
    postgres.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The relational store's URL, once per engine: a temp SQLite file, then a fresh
    PostgreSQL database on the session's server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'akita.db'}"
    return str(request.getfixturevalue("pg_url"))
