"""InfluxDB store over the v1-compatible HTTP API (``/write``, ``/query``, ``/ping``).

Works with InfluxDB 1.x, with 2.x through a DBRP mapping and with 3.x's v1 endpoints.
Deliberately not influxdb-client: its v2 endpoints answer 404 on a 1.x server.

Error classes (``StoreError.retryable``):

- connection errors, timeouts, 5xx, 401/403 (credentials being rotated) and 404
  ("database not found": run ``akita cloud init-db``) are retryable: the data is fine,
  the store is not, and the ingest holds the data and tries again;
- 400 (a bad line, a field type conflict) and 413 (body too large) are not: sending the
  same bytes again can never succeed, so the caller splits the batch or dead-letters it.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from cloud.errors import StoreError
from cloud.store.base import FieldValue, Point, SeriesPoint, window_ms
from cloud.store.lineproto import format_point, from_ms, to_ms
from schemas.devices import DeviceKind

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = tuple(k.value for k in DeviceKind)
RAW_RP = "raw"
RAW_SHARD = "7d"  # see init_db
AGG_RP = "agg_1m"
# How far back each continuous-query run recomputes. A pass costs influxd about 5 CPU s
# per million raw points (measured, 1.6.7), so this window multiplies the cost of
# downsampling: with 10m every point was aggregated ten times, more than writing it
# cost. Later arrivals are re-aggregated on demand (reaggregate(), cloud.ingest.late).
RESAMPLE_FOR = "2m"
MINUTE_MS = 60_000
REAGGREGATE_STEP_MS = 10 * MINUTE_MS
REAGGREGATE_TIMEOUT_S = 300.0


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _coerce(value: Any, field_type: str | None) -> FieldValue | None:
    if value is None:
        return None
    if field_type == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value  # type: ignore[no-any-return]


class InfluxStore:
    """A :class:`~cloud.store.base.TimeSeriesStore` on InfluxDB's v1 HTTP API.

    ``username``/``password`` go as HTTP basic auth (1.x ``auth-enabled``); ``token`` as
    ``Authorization: Token ...`` (2.x/3.x, and 1.8+ as ``user:password``).
    """

    def __init__(
        self,
        base_url: str,
        database: str = "akita",
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        rp: str | None = None,
        timeout: float = 10.0,
        retries: int = 1,
        verify: bool | str = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.database = database
        self.rp = rp
        self.retries = retries
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = (username, password or "") if username else None
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            auth=auth,
            timeout=timeout,
            verify=verify,
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        )
        self._field_types: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never shows credentials
        return f"InfluxStore({self.base_url!r}, database={self.database!r})"

    # --- HTTP ---------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                error = StoreError(
                    f"influxdb {self.base_url}{path} unreachable: {type(exc).__name__}: {exc}",
                    retryable=True,
                )
                cause: BaseException = exc
            else:
                if response.status_code < 300:
                    return response
                error = self._status_error(path, response)
                cause = httpx.HTTPStatusError("", request=response.request, response=response)
            if not error.retryable or attempt >= self.retries:
                raise error from cause
            attempt += 1
            time.sleep(random.uniform(0.05, 0.2) * 2**attempt)

    def _status_error(self, path: str, response: httpx.Response) -> StoreError:
        status = response.status_code
        try:
            detail = str(response.json().get("error", response.text))
        except ValueError:
            detail = response.text
        detail = detail[:500]
        if status in (401, 403):
            return StoreError(f"influxdb {path} refused the credentials ({status})", retryable=True)
        if status == 404:
            return StoreError(
                f"influxdb {path} {status}: {detail} (run 'akita cloud init-db')", retryable=True
            )
        return StoreError(f"influxdb {path} {status}: {detail}", retryable=status >= 500)

    # --- writing ------------------------------------------------------------------------

    def write(self, points: Sequence[Point]) -> None:
        if points:
            self.write_lines("\n".join(format_point(p) for p in points))

    def write_lines(self, body: str | bytes, *, database: str | None = None) -> None:
        """POST ready-made line protocol (ms precision). The ingest's fast path."""
        params = {"db": database or self.database, "precision": "ms"}
        if self.rp:
            params["rp"] = self.rp
        data = body.encode() if isinstance(body, str) else body
        self._request("POST", "/write", params=params, content=data)

    # --- querying -----------------------------------------------------------------------

    def query(
        self, q: str, *, database: str | None = None, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Run InfluxQL (one or more ``;``-separated statements); one result per statement.

        A statement error raises a non-retryable :class:`StoreError` naming it.
        ``timeout`` overrides the store's for a long statement.
        """
        data = {"q": q, "db": database or self.database, "epoch": "ms"}
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        response = self._request("POST", "/query", data=data, **extra)
        results: list[dict[str, Any]] = response.json().get("results", [])
        for result in results:
            if "error" in result:
                raise StoreError(
                    f"influxql error: {result['error']} in {q[:300]!r}", retryable=False
                )
        return results

    def field_types(self, measurement: str, *, refresh: bool = False) -> dict[str, str]:
        """``{field: float|integer|string|boolean}`` of a measurement (cached)."""
        with self._lock:
            cached = self._field_types.get(measurement)
        if cached is not None and not refresh:
            return cached
        results = self.query(f"SHOW FIELD KEYS FROM {quote_ident(measurement)}")
        types = {
            str(row[0]): str(row[1])
            for series in results[0].get("series", [])
            for row in series.get("values", [])
        }
        with self._lock:
            self._field_types[measurement] = types
        return types

    def _device_measurements(self, device_id: str) -> list[str]:
        results = self.query(f'SHOW MEASUREMENTS WHERE "device" = {quote_string(device_id)}')
        names = [str(row[0]) for s in results[0].get("series", []) for row in s.get("values", [])]
        return [n for n in names if n in KINDS]

    def latest(self, device_id: str) -> dict[str, SeriesPoint]:
        """Last value and time of every reading field of a device (device-kind measurements)."""
        out: dict[str, SeriesPoint] = {}
        where = f'WHERE "device" = {quote_string(device_id)}'
        for measurement in self._device_measurements(device_id):
            types = self.field_types(measurement, refresh=True)
            if not types:
                continue
            fields = sorted(types)
            q = ";".join(
                f"SELECT last({quote_ident(f)}) FROM {quote_ident(measurement)} {where}"
                for f in fields
            )
            for field, result in zip(fields, self.query(q), strict=True):
                for series in result.get("series", []):
                    for ts, value in series.get("values", []):
                        if value is None:
                            continue
                        prev = out.get(field)
                        if prev is None or from_ms(int(ts)) >= prev.ts:
                            out[field] = SeriesPoint(from_ms(int(ts)), _coerce(value, types[field]))
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
        end``; windows are aligned to the epoch (as ``GROUP BY time()`` does)."""
        measurements = self._device_measurements(device_id)
        if not measurements:
            return []
        source = ",".join(quote_ident(m) for m in measurements)
        where = (
            f'WHERE "device" = {quote_string(device_id)} '
            f"AND time >= {to_ms(start)}ms AND time <= {to_ms(end)}ms"
        )
        if window is None:
            q = f"SELECT {quote_ident(field)} FROM {source} {where}"
            result_type: str | None = None
        else:
            width_ms = window_ms(window, aggregate)
            q = (
                f"SELECT {aggregate}({quote_ident(field)}) FROM {source} {where} "
                f"GROUP BY time({width_ms}ms) fill(none)"
            )
            result_type = {"mean": "float", "count": "integer"}.get(aggregate)
        points: list[SeriesPoint] = []
        type_of: dict[str, str | None] = {}
        for measurement in measurements:
            types = self.field_types(measurement)
            if field not in types:  # a field first written after the cache was filled
                types = self.field_types(measurement, refresh=True)
            type_of[measurement] = types.get(field)
        for result in self.query(q):
            for series in result.get("series", []):
                field_type = result_type or type_of.get(series.get("name", ""))
                for ts, value in series.get("values", []):
                    if value is not None:
                        points.append(SeriesPoint(from_ms(int(ts)), _coerce(value, field_type)))
        points.sort(key=lambda p: p.ts)
        return points

    def tag_values(self, measurement: str, key: str) -> list[str]:
        """Distinct values of one tag in a measurement, sorted."""
        results = self.query(
            f"SHOW TAG VALUES FROM {quote_ident(measurement)} WITH KEY = {quote_ident(key)}"
        )
        return sorted(
            {str(row[1]) for s in results[0].get("series", []) for row in s.get("values", [])}
        )

    def ping(self) -> bool:
        try:
            self._client.get("/ping", timeout=2.0).raise_for_status()
        except httpx.HTTPError:
            return False
        return True

    def close(self) -> None:
        self._client.close()

    # --- set-up -------------------------------------------------------------------------

    def init_db(
        self,
        *,
        raw_duration: str = "90d",
        agg_duration: str = "3650d",
        measurements: Iterable[str] = KINDS,
        resample_for: str = RESAMPLE_FOR,
        raw_shard: str = RAW_SHARD,
    ) -> list[str]:
        """Create the database, the ``raw`` (DEFAULT) and ``agg_1m`` retention policies and
        one 1-minute downsampling continuous query per measurement. Idempotent; returns
        the statements it ran (empty when everything was already in place).

        ``raw`` gets ``raw_shard`` shard groups (at most its duration), not InfluxDB's
        1-day default for a 2-day..6-month policy: a month-long statement grouped by
        series (the meter pilot's report, a dashboard's 30-day range) costs influxd per
        (series, shard) pair, so 7-day groups open 5 shards per series where 1-day groups
        open 30 (measured: the pilot report's influxd CPU for 10,000 meters x 30 days
        16.3-16.8 s -> 6.9-10.5 s). The price: ``raw`` is dropped a group at a time, so a
        point is kept up to ``raw_duration`` + ``raw_shard``.
        """
        db = quote_ident(self.database)
        ran: list[str] = []

        def run(statement: str) -> None:
            self.query(statement)
            ran.append(statement)

        existing_dbs = {
            str(row[0])
            for s in self.query("SHOW DATABASES")[0].get("series", [])
            for row in s.get("values", [])
        }
        if self.database not in existing_dbs:
            run(f"CREATE DATABASE {db}")
        policies = {
            str(row[0]): (str(row[1]), str(row[2]), bool(row[4]))
            for s in self.query(f"SHOW RETENTION POLICIES ON {db}")[0].get("series", [])
            for row in s.get("values", [])
        }
        shard = raw_shard if _duration_hours(raw_shard) <= _duration_hours(raw_duration) else None
        for name, duration, shard_duration, default in (
            (RAW_RP, raw_duration, shard or raw_duration, True),
            (AGG_RP, agg_duration, None, False),  # InfluxDB's default: 7 days past 6 months
        ):
            tail = f"ON {db} DURATION {duration} REPLICATION 1"
            if shard_duration is not None:
                tail += f" SHARD DURATION {shard_duration}"
            tail += " DEFAULT" if default else ""
            current = policies.get(name)
            if current is None:
                run(f"CREATE RETENTION POLICY {quote_ident(name)} {tail}")
            elif (
                _duration_hours(duration) != _go_duration_hours(current[0])
                or (
                    shard_duration is not None
                    and _duration_hours(shard_duration) != _go_duration_hours(current[1])
                )
                or (default and not current[2])
            ):
                # a new shard duration applies to shard groups created from now on
                run(f"ALTER RETENTION POLICY {quote_ident(name)} {tail}")
        cqs = {
            str(row[0]): str(row[1])
            for s in self.query("SHOW CONTINUOUS QUERIES")[0].get("series", [])
            if s.get("name") == self.database
            for row in s.get("values", [])
        }
        for measurement in measurements:
            name = f"cq_{measurement}_1m"
            statement = (
                f"CREATE CONTINUOUS QUERY {quote_ident(name)} ON {db} "
                f"RESAMPLE EVERY 1m FOR {resample_for} BEGIN "
                f"{self._downsample(measurement)} GROUP BY time(1m), * END"
            )
            current_cq = cqs.get(name)
            if current_cq is not None and _norm(current_cq) == _norm(statement):
                continue
            if current_cq is not None:
                run(f"DROP CONTINUOUS QUERY {quote_ident(name)} ON {db}")
            run(statement)
        log.info("influx_init_db database=%s statements=%d", self.database, len(ran))
        return ran

    def _downsample(self, measurement: str) -> str:
        db = quote_ident(self.database)
        m = quote_ident(measurement)
        return (
            f"SELECT mean(*), min(*), max(*) INTO {db}.{quote_ident(AGG_RP)}.{m} "
            f"FROM {db}.{quote_ident(RAW_RP)}.{m}"
        )

    def reaggregate(
        self, measurement: str, start_ms: int, end_ms: int, gateway: str | None = None
    ) -> None:
        """Recompute the 1-minute aggregates of the minutes from ``start_ms`` to ``end_ms``
        (whole minutes, both ends included), of one gateway's series or of all.

        The continuous queries only look :data:`RESAMPLE_FOR` back, so readings that
        arrive later (a spool emptied after an uplink outage, a store outage) would leave
        their minutes without aggregates, and those outlive the raw data by ten years.
        Idempotent: an aggregate point is keyed by its series and minute.
        """
        if measurement not in KINDS:
            raise StoreError(f"measurement {measurement!r} has no aggregates", retryable=False)
        lo = start_ms // MINUTE_MS * MINUTE_MS
        hi = (end_ms // MINUTE_MS + 1) * MINUTE_MS
        only = "" if gateway is None else f' AND "gateway" = {quote_string(gateway)}'
        # a pass costs about 5 CPU s per million points: an hours-long outage of every
        # gateway goes in 10-minute steps, each well within the timeout
        for a in range(lo, hi, REAGGREGATE_STEP_MS):
            b = min(a + REAGGREGATE_STEP_MS, hi)
            self.query(
                f"{self._downsample(measurement)} WHERE time >= {a}ms AND time < {b}ms"
                f"{only} GROUP BY time(1m), *",
                timeout=REAGGREGATE_TIMEOUT_S,
            )


def _norm(statement: str) -> str:
    return re.sub(r"\s+", " ", statement.replace('"', "")).strip().lower()


def _duration_hours(duration: str) -> float:
    match = re.fullmatch(r"(\d+)([dhw])", duration)
    if not match:
        raise StoreError(f"retention duration {duration!r} must look like 90d, 24h or 4w")
    n, unit = int(match.group(1)), match.group(2)
    return n * {"h": 1, "d": 24, "w": 168}[unit]


def _go_duration_hours(text: str) -> float:
    """InfluxDB's SHOW form, e.g. ``2160h0m0s`` (``0s`` is infinite)."""
    total = 0.0
    for n, unit in re.findall(r"([\d.]+)(h|m|s)", text):
        total += float(n) * {"h": 1, "m": 1 / 60, "s": 1 / 3600}[unit]
    return total
