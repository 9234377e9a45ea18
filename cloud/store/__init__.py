"""Time-series stores behind one small interface (:class:`TimeSeriesStore`).

- ``cloud/store/influx/``: InfluxDB through the v1-compatible HTTP API (1.x, 2.x via
  DBRP mapping, 3.x).
- ``cloud/store/sqlite/``: the embedded default for the demo.

Both pass the same contract tests (``tests/cloud/store/test_contract.py``).
"""

from cloud.store.base import Point, SeriesPoint, TimeSeriesStore

__all__ = ["Point", "SeriesPoint", "TimeSeriesStore"]
