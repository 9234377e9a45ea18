"""Time-series stores behind one small interface (:class:`TimeSeriesStore`).

- ``cloud/store/influx/``: InfluxDB through the v1-compatible HTTP API (1.x, 2.x via
  DBRP mapping, 3.x).
- ``cloud/store/sqlite/``: the embedded default for the demo.

``open_store(url)`` picks one from a URL (``sqlite:///path.db``,
``influx+http://user:pass@host:8086/akita``, ``...?token=...``); ``init_db(url)`` prepares
it (``akita cloud init-db``). Both stores pass the same contract tests
(``tests/cloud/store/test_contract.py``).
"""

from cloud.store.base import Point, SeriesPoint, TimeSeriesStore
from cloud.store.url import init_db, open_store

__all__ = ["Point", "SeriesPoint", "TimeSeriesStore", "init_db", "open_store"]
