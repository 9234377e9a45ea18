"""Keeping the 1-minute aggregates right when readings arrive late.

InfluxDB's continuous queries recompute only the last couple of minutes
(:data:`cloud.store.influx.store.RESAMPLE_FOR`): looking further back made every pass
re-read ten minutes of raw data, which cost influxd more than writing it. Readings that
arrive later than that still happen every day in a city: a gateway's spool empties
after a cellular outage, or the ingest writes what it held while the store was down.
Their minutes would keep no aggregates, and the aggregates outlive the raw data (10
years against 90 days).

So the ingest notes, after a durable write, which (kind, gateway) got readings older
than :data:`LATE_MS`, merged into one time range each, and after a store outage the
whole outage for every kind; its housekeeping thread then asks the store to recompute
those minutes (:meth:`InfluxStore.reaggregate`). A store without aggregates (SQLite)
gets no such object.

What is noted lives in memory: a worker killed in the seconds between a late write and
its re-aggregation leaves those minutes' aggregates as the continuous query left them.
``akita cloud reaggregate`` recomputes any range by hand.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from cloud.errors import StoreError

log = logging.getLogger(__name__)

# With RESAMPLE EVERY 1m FOR 2m a reading is in the passes at the end of its minute and
# one minute later, so any reading written less than 60 s after its timestamp is
# aggregated; 30 s leaves room for a slow pass.
LATE_MS = 30_000
# A store outage: recompute from this long before it began (passes that ran while
# influxd was already failing, before the ingest noticed).
OUTAGE_MARGIN_MS = 180_000


@runtime_checkable
class Reaggregating(Protocol):
    def reaggregate(
        self, measurement: str, start_ms: int, end_ms: int, gateway: str | None = None
    ) -> None: ...


class LateAggregates:
    """Time ranges whose aggregates need recomputing, one per (kind, gateway)."""

    def __init__(self, store: Reaggregating, kinds: Iterable[str]) -> None:
        self.store = store
        self.kinds = tuple(kinds)
        self._lock = threading.Lock()
        # (kind, gateway or None for every gateway) -> (first ms, last ms)
        self._pending: dict[tuple[str, str | None], tuple[int, int]] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def note_batch(self, batch: Any) -> None:
        """A batch with late readings is stored: its kinds' minutes, this gateway only."""
        ranges: dict[str, tuple[int, int]] = {}
        for r in batch.readings:
            t = int(r.ts.timestamp() * 1000)
            lo, hi = ranges.get(r.kind, (t, t))
            ranges[r.kind] = (min(lo, t), max(hi, t))
        for kind, (lo, hi) in ranges.items():
            self._add((kind, batch.gateway_id), lo, hi)

    def note_outage(self, start_ms: int, end_ms: int) -> None:
        """The store was down: every kind, every gateway, the outage and a margin."""
        for kind in self.kinds:
            self._add((kind, None), start_ms - OUTAGE_MARGIN_MS, end_ms)

    def _add(self, key: tuple[str, str | None], lo: int, hi: int) -> None:
        with self._lock:
            old = self._pending.get(key)
            self._pending[key] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))

    def run(self) -> int:
        """Recompute what is pending; returns how many ranges were done. A range the
        store refuses now stays pending (retryable) or is logged and dropped."""
        with self._lock:
            pending, self._pending = self._pending, {}
        done = 0
        items = sorted(pending.items(), key=str)
        for i, ((kind, gateway), (lo, hi)) in enumerate(items):
            try:
                self.store.reaggregate(kind, lo, hi, gateway=gateway)
            except StoreError as exc:
                if exc.retryable:  # the store is down again: all of it waits
                    for key, (a, b) in items[i:]:
                        self._add(key, a, b)
                    break
                log.warning("reaggregate_failed kind=%s gateway=%s reason=%s", kind, gateway, exc)
                continue
            done += 1
            log.info(
                "aggregates_recomputed kind=%s gateway=%s from_ms=%d to_ms=%d",
                kind,
                gateway or "*",
                lo,
                hi,
            )
        return done
