"""Fixtures of the LPWA tests: an InfluxStore on a fresh database (real influxd)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud.store import open_store
from cloud.store.influx import InfluxStore
from tests.servers import Influx


@pytest.fixture
def influx_store(influx: Influx, influx_db: str) -> Iterator[InfluxStore]:
    store = open_store(f"influx+http://127.0.0.1:{influx.port}/{influx_db}")
    assert isinstance(store, InfluxStore)
    store.init_db()
    yield store
    store.close()
