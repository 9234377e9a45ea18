"""What the pilot report reads from InfluxDB: one grouped statement per figure, so the
cost grows with the number of meters, not with the number of hours stored."""

from __future__ import annotations

from typing import Any, Protocol

from cloud.pilot.figures import Span

METER = "water_meter"
BLOCK = "water_block"


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


def hours_stored(store: Queries, from_ms: int, to_ms: int) -> dict[str, int]:
    q = (
        f'SELECT count("index") FROM "{METER}" WHERE {_where(from_ms, to_ms, include_start=False)}'
        ' GROUP BY "device"'
    )
    rows = _by_device(store.query(q, timeout=120)[0])
    return {d: int(v[0][1]) for d, v in rows.items() if v and v[0][1] is not None}


def spans(
    store: Queries, measurement: str, field: str, from_ms: int, to_ms: int, *, include_start: bool
) -> dict[str, Span]:
    """Each device's first and last value of ``field`` in the period, with their times."""
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
        f'{_where(from_ms, to_ms, include_start=False)} GROUP BY time(1d), "device"'
    )
    rows = _by_device(store.query(q, timeout=120)[0])
    return {d: [(int(t), float(v)) for t, v in vals if v is not None] for d, vals in rows.items()}
