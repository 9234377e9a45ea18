"""The embedded SQLite time-series store (the demo's default), with InfluxDB semantics."""

from cloud.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
