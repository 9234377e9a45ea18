"""The embedded time-series store: one SQLite file, InfluxDB's semantics.

- A series is (measurement, tags); tags are cleaned and empty ones dropped exactly as the
  line protocol does (:func:`cloud.store.lineproto.clean_tag`).
- A sample is keyed by (series, field, timestamp in ms): writing a point again replaces
  its values (UPSERT), and a point carrying only some fields leaves the others alone, as
  InfluxDB merges fields of one series and timestamp. Writes are therefore idempotent.
- A field keeps the type it was first written with; another type is refused with a
  non-retryable :class:`StoreError` (InfluxDB's ``field type conflict``).
- WAL journal, ``synchronous=NORMAL``: a committed write survives a killed process (a
  power cut may lose the last transactions; production uses InfluxDB).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from cloud.db.files import private_file
from cloud.errors import StoreError
from cloud.store.base import FieldValue, Point, SeriesPoint, window_ms
from cloud.store.lineproto import clean_tag, from_ms, normalise_field, to_ms
from schemas.devices import DeviceKind

KINDS: tuple[str, ...] = tuple(k.value for k in DeviceKind)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    measurement TEXT NOT NULL,
    tags TEXT NOT NULL,
    device TEXT,
    UNIQUE (measurement, tags)
);
CREATE INDEX IF NOT EXISTS ix_series_device ON series (device);
CREATE TABLE IF NOT EXISTS samples (
    series_id INTEGER NOT NULL REFERENCES series (id),
    field TEXT NOT NULL,
    ts INTEGER NOT NULL,
    vtype TEXT NOT NULL,
    value,
    PRIMARY KEY (series_id, field, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS field_types (
    measurement TEXT NOT NULL,
    field TEXT NOT NULL,
    vtype TEXT NOT NULL,
    PRIMARY KEY (measurement, field)
) WITHOUT ROWID;
"""

_TYPE_NAMES = {"f": "float", "i": "integer", "b": "boolean", "s": "string"}


def _vtype(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "b"
    if isinstance(value, int):
        return "i"
    if isinstance(value, float):
        return "f"
    if isinstance(value, str):
        return "s"
    raise StoreError(
        f"unsupported field type {type(value).__name__} (value {value!r})", retryable=False
    )


def _restore(vtype: str, value: object) -> FieldValue | None:
    if value is None:
        return None
    if vtype == "b":
        return bool(value)
    if vtype == "f":
        return float(value)  # type: ignore[arg-type]
    if vtype == "i":
        return int(value)  # type: ignore[call-overload, no-any-return]
    return str(value)


class SqliteStore:
    """A :class:`~cloud.store.base.TimeSeriesStore` in one SQLite file (``:memory:`` works)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            private_file(Path(self.path))  # 0600 in a 0700 directory, like akita.db
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path!r} cannot open: {exc}") from exc
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], int] = {}
        self._types: dict[tuple[str, str], str] = {
            (m, f): t for m, f, t in self._db.execute("SELECT * FROM field_types")
        }

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    def _series_id(self, measurement: str, tags: dict[str, str]) -> int:
        key = json.dumps(tags, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        cached = self._series.get((measurement, key))
        if cached is not None:
            return cached
        self._db.execute(
            "INSERT OR IGNORE INTO series (measurement, tags, device) VALUES (?, ?, ?)",
            (measurement, key, tags.get("device")),
        )
        (series_id,) = self._db.execute(
            "SELECT id FROM series WHERE measurement = ? AND tags = ?", (measurement, key)
        ).fetchone()
        self._series[(measurement, key)] = int(series_id)
        return int(series_id)

    def write(self, points: Sequence[Point]) -> None:
        if not points:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                rows = []
                new_types: list[tuple[str, str, str]] = []
                for point in points:
                    tags = {clean_tag(k): clean_tag(v) for k, v in point.tags.items() if v}
                    series_id = self._series_id(point.measurement, tags)
                    ts = to_ms(point.ts)
                    present = {k: v for k, v in point.fields.items() if v is not None}
                    if not present:
                        raise StoreError(
                            f"point {point.measurement} at {point.ts.isoformat()} has no fields",
                            retryable=False,
                        )
                    for field, raw in present.items():
                        value = normalise_field(point.measurement, field, raw)
                        vtype = _vtype(value)
                        known = self._types.get((point.measurement, field))
                        if known is None:
                            self._types[(point.measurement, field)] = vtype
                            new_types.append((point.measurement, field, vtype))
                        elif known != vtype:
                            raise StoreError(
                                f"field type conflict: field {field!r} on measurement "
                                f"{point.measurement!r} is {_TYPE_NAMES[known]}, got "
                                f"{_TYPE_NAMES[vtype]} {value!r}",
                                retryable=False,
                            )
                        rows.append((series_id, field, ts, vtype, value))
                self._db.executemany(
                    "INSERT OR IGNORE INTO field_types VALUES (?, ?, ?)", new_types
                )
                self._db.executemany(
                    "INSERT INTO samples (series_id, field, ts, vtype, value) VALUES "
                    "(?, ?, ?, ?, ?) ON CONFLICT (series_id, field, ts) DO UPDATE SET "
                    "vtype = excluded.vtype, value = excluded.value",
                    rows,
                )
                self._db.execute("COMMIT")
            except StoreError:
                self._rollback()
                raise
            except sqlite3.Error as exc:
                self._rollback()
                raise StoreError(f"sqlite write failed: {exc}", retryable=True) from exc

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        # caches may hold rows of the rolled-back transaction
        self._series.clear()
        self._types = {(m, f): t for m, f, t in self._db.execute("SELECT * FROM field_types")}

    def _device_series(self, device_id: str) -> list[tuple[int, str]]:
        marks = ",".join("?" * len(KINDS))
        return [
            (int(r[0]), str(r[1]))
            for r in self._db.execute(
                f"SELECT id, measurement FROM series WHERE device = ? AND measurement IN ({marks})",
                (device_id, *KINDS),
            )
        ]

    def latest(self, device_id: str) -> dict[str, SeriesPoint]:
        """Last value and time of every reading field of a device (device-kind measurements)."""
        out: dict[str, SeriesPoint] = {}
        with self._lock:
            for series_id, _measurement in self._device_series(device_id):
                rows = self._db.execute(
                    "SELECT field, max(ts), vtype, value FROM samples WHERE series_id = ? "
                    "GROUP BY field",
                    (series_id,),
                ).fetchall()
                for field, ts, vtype, value in rows:
                    prev = out.get(field)
                    if prev is None or from_ms(ts) >= prev.ts:
                        out[field] = SeriesPoint(from_ms(ts), _restore(vtype, value))
        return out

    def series(
        self,
        device_id: str,
        field: str,
        start: datetime,
        end: datetime,
        window: timedelta | None = None,
        aggregate: str = "mean",
    ) -> list[SeriesPoint]:
        """Raw values (``window=None``) or one aggregate per non-empty window, ``start <= t <=
        end``; windows are aligned to the epoch, as InfluxDB's ``GROUP BY time()``."""
        lo, hi = to_ms(start), to_ms(end)
        with self._lock:
            ids = [sid for sid, _ in self._device_series(device_id)]
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            rows = self._db.execute(
                f"SELECT ts, vtype, value FROM samples WHERE series_id IN ({marks}) "
                "AND field = ? AND ts >= ? AND ts <= ? ORDER BY ts",
                (*ids, field, lo, hi),
            ).fetchall()
        raw = [(int(ts), vtype, value) for ts, vtype, value in rows]
        if window is None:
            return [SeriesPoint(from_ms(ts), _restore(vt, v)) for ts, vt, v in raw]
        width_ms = window_ms(window, aggregate)
        buckets: dict[int, list[tuple[str, object]]] = {}
        for ts, vtype, value in raw:
            buckets.setdefault(ts - ts % width_ms, []).append((vtype, value))
        return [
            SeriesPoint(from_ms(b), _aggregate(aggregate, field, values))
            for b, values in sorted(buckets.items())
        ]

    def tag_values(self, measurement: str, key: str) -> list[str]:
        """Distinct values of one tag in a measurement, sorted."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT json_extract(tags, ?) FROM series WHERE measurement = ?",
                (f'$."{key}"', measurement),
            ).fetchall()
        return sorted({str(r[0]) for r in rows if r[0] is not None})

    def ping(self) -> bool:
        try:
            with self._lock:
                self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _aggregate(name: str, field: str, values: list[tuple[str, object]]) -> FieldValue | None:
    vtype = values[0][0]
    if name == "count":
        return len(values)
    if name == "last":
        return _restore(vtype, values[-1][1])
    if name == "first":
        return _restore(vtype, values[0][1])
    if vtype == "s" or (vtype == "b" and name in ("mean", "sum")):
        raise StoreError(
            f"aggregate {name}() is not defined for {_TYPE_NAMES[vtype]} field {field!r}",
            retryable=False,
        )
    numbers: list[float] = [float(v) for _, v in values]  # type: ignore[arg-type]
    if name == "mean":
        return sum(numbers) / len(numbers)
    if name == "sum":
        return _restore(vtype, sum(numbers))
    return _restore(vtype, min(numbers) if name == "min" else max(numbers))
