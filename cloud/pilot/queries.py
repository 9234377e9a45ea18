"""What the pilot report reads from InfluxDB: grouped statements, so the cost grows with
the number of meters and days, not with the number of hours asked for one by one.

What a statement costs in influxd 1.x is about the (series, shard) pairs it opens: a
``GROUP BY "device"`` over 30 days of 10,000 meters opens 300,000 of them (daily shard
groups), whichever field and however few points. So the report reads the whole period
only twice (the meters' hours per day, and their daily battery), and takes each meter's
first and last index from the one day that holds it (known from the hours per day): for
nearly every meter that is the period's first and last day, one shard each. A meter
that is late, silent for a while or dead gets its own day(s), filtered by device.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from cloud.pilot.figures import DAY_MS, Span
from cloud.store.influx.store import quote_string

METER = "water_meter"
BLOCK = "water_block"
# a day's statement names its meters when they are fewer than this share of the meters
# with data (else it reads them all and keeps those it asked for)
FILTER_BELOW = 0.5
FILTER_CHUNK = 400  # devices named in one statement


class Queries(Protocol):
    def query(
        self, q: str, *, database: str | None = None, timeout: float | None = None
    ) -> list[dict[str, Any]]: ...


def _where(from_ms: int, to_ms: int, *, include_start: bool) -> str:
    # a meter reading is stamped with its hour's end: the period's first hour ends after
    # `from`; the block's totaliser is a sample at an instant, so `from` itself counts
    op = ">=" if include_start else ">"
    return f"time {op} {from_ms}ms AND time <= {to_ms}ms"


def _by_device(result: dict[str, Any]) -> dict[str, list[list[Any]]]:
    return {
        s["tags"]["device"]: s["values"]
        for s in result.get("series", [])
        if s.get("tags", {}).get("device")
    }


def hours_per_day(store: Queries, from_ms: int, to_ms: int) -> dict[str, dict[int, int]]:
    """Each meter's stored hours per day (UTC day buckets of ``GROUP BY time(1d)``, the
    bucket's start in ms), days without any left out."""
    q = (
        f'SELECT count("index") FROM "{METER}" WHERE '
        f'{_where(from_ms, to_ms, include_start=False)} GROUP BY time(1d), "device" fill(none)'
    )
    rows = _by_device(store.query(q, timeout=300)[0])
    return {d: {int(t): int(c) for t, c in vals if c} for d, vals in rows.items()}


def meter_spans(
    store: Queries, days: Mapping[str, Mapping[int, int]], from_ms: int, to_ms: int
) -> dict[str, Span]:
    """Each meter's first and last index in the period, with their times: ``first`` in
    the first day with hours stored, ``last`` in the last one (``days`` from
    :func:`hours_per_day`), which is what ``first``/``last`` over the whole period give."""
    with_data = {d: sorted(b for b, n in per_day.items() if n) for d, per_day in days.items()}
    with_data = {d: b for d, b in with_data.items() if b}
    first = _in_day(store, "first", {d: b[0] for d, b in with_data.items()}, from_ms, to_ms)
    last = _in_day(store, "last", {d: b[-1] for d, b in with_data.items()}, from_ms, to_ms)
    out = {}
    for device, (t0, v0) in first.items():
        if device in last:
            t1, v1 = last[device]
            out[device] = Span(t0, v0, t1, v1)
    return out


def _in_day(
    store: Queries, selector: str, day_of: Mapping[str, int], from_ms: int, to_ms: int
) -> dict[str, tuple[int, float]]:
    """``selector`` ("first"/"last") of each device's index within its day of ``day_of``
    (clipped to the period)."""
    groups: dict[int, list[str]] = {}
    for device, day in day_of.items():
        groups.setdefault(day, []).append(device)
    statements: list[tuple[str, set[str]]] = []
    for day, devices in sorted(groups.items()):
        lo = f"time > {from_ms}ms" if day <= from_ms else f"time >= {day}ms"
        hi = f"time <= {to_ms}ms" if day + DAY_MS > to_ms else f"time < {day + DAY_MS}ms"
        for names in _filters(sorted(devices), len(day_of)):
            q = f'SELECT {selector}("index") FROM "{METER}" WHERE {lo} AND {hi}{names}'
            q += ' GROUP BY "device"'
            statements.append((q, set(devices)))
    out: dict[str, tuple[int, float]] = {}
    for batch in _batches(statements, 20):
        results = store.query("; ".join(q for q, _ in batch), timeout=300)
        for (_, wanted), result in zip(batch, results, strict=True):
            for device, rows in _by_device(result).items():
                if device in wanted and rows and rows[0][1] is not None:
                    out[device] = (int(rows[0][0]), float(rows[0][1]))
    return out


def _filters(devices: list[str], total: int) -> Iterator[str]:
    if len(devices) >= FILTER_BELOW * total:
        yield ""
        return
    for i in range(0, len(devices), FILTER_CHUNK):
        chunk = devices[i : i + FILTER_CHUNK]
        yield " AND (" + " OR ".join(f'"device" = {quote_string(d)}' for d in chunk) + ")"


def _batches(items: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def spans(
    store: Queries, measurement: str, field: str, from_ms: int, to_ms: int, *, include_start: bool
) -> dict[str, Span]:
    """Each device's first and last value of ``field`` over the whole period, with their
    times (the block inlets: few series)."""
    where = _where(from_ms, to_ms, include_start=include_start)
    q = (
        f'SELECT first("{field}") FROM "{measurement}" WHERE {where} GROUP BY "device"; '
        f'SELECT last("{field}") FROM "{measurement}" WHERE {where} GROUP BY "device"'
    )
    first, last = (_by_device(r) for r in store.query(q, timeout=120))
    out = {}
    for device, rows in first.items():
        end = last.get(device)
        if rows and end and rows[0][1] is not None and end[0][1] is not None:
            out[device] = Span(int(rows[0][0]), float(rows[0][1]), int(end[0][0]), float(end[0][1]))
    return out


def daily_battery(store: Queries, from_ms: int, to_ms: int) -> dict[str, list[tuple[int, float]]]:
    """Each meter's daily mean battery (days without a value left out)."""
    q = (
        f'SELECT mean("battery") FROM "{METER}" WHERE '
        f'{_where(from_ms, to_ms, include_start=False)} GROUP BY time(1d), "device" fill(none)'
    )
    rows = _by_device(store.query(q, timeout=300)[0])
    return {d: [(int(t), float(v)) for t, v in vals if v is not None] for d, vals in rows.items()}
