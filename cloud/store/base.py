"""The store interface.

Measurement = device kind (``water_block``, ...). Tags: ``device``, ``gateway``,
``site``, ``district``, ``kind`` (all bounded sets). Fields: the reading's values.
A point is keyed by (measurement, tags, timestamp), so writing the same reading
twice stores it once: writes are idempotent, which is what makes MQTT
redelivery safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cloud.errors import StoreError

FieldValue = float | int | bool | str

# What ``TimeSeriesStore.series`` can compute per window, in every store.
AGGREGATES = frozenset({"mean", "min", "max", "last", "first", "count", "sum"})


@dataclass(frozen=True, slots=True)
class Point:
    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    ts: datetime  # aware, UTC


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    ts: datetime
    value: FieldValue | None


class TimeSeriesStore(Protocol):
    def write(self, points: Sequence[Point]) -> None:
        """Durably store points (idempotent). Raises StoreError (see ``retryable``)."""
        ...

    def latest(self, device_id: str) -> dict[str, SeriesPoint]:
        """Last value of every field of a device."""
        ...

    def series(
        self,
        device_id: str,
        field: str,
        start: datetime,
        end: datetime,
        window: timedelta | None = None,
        aggregate: str = "mean",
    ) -> list[SeriesPoint]:
        """Raw values, or one aggregate (mean, min, max, last, count) per window."""
        ...

    def ping(self) -> bool:
        """True when the store answers."""
        ...

    def close(self) -> None: ...


def window_ms(window: timedelta, aggregate: str) -> int:
    """``window`` in whole milliseconds, once ``aggregate`` is known to be one of
    :data:`AGGREGATES`; a bad aggregate or a window under 1 ms is a non-retryable StoreError.
    """
    if aggregate not in AGGREGATES:
        raise StoreError(
            f"aggregate {aggregate!r} is not one of {sorted(AGGREGATES)}", retryable=False
        )
    ms = int(window / timedelta(milliseconds=1))
    if ms < 1:
        raise StoreError(f"window {window} is shorter than 1 ms", retryable=False)
    return ms
