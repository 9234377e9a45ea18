"""Detectors for any device: offline for too many poll intervals, and gateway seq gaps."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

import numpy as np

from cloud.detect.base import Detection
from cloud.detect.config import CommonConfig
from cloud.detect.flags import Flags
from schemas.alert import Severity

log = logging.getLogger(__name__)

# A seq this far below the last one is a reset counter (new gateway disk), not a replay.
SEQ_RESET_BACKWARDS = 1000


class OfflineDetector:
    """``device_offline`` when a device has sent nothing for N poll intervals.

    ``seen`` is the per-reading hot path (two dict lookups); ``tick`` compares every
    device at once with numpy, so a city of devices costs one vector op per tick.
    The same machinery serves other silences (``heartbeat_missing``) via ``kind``.
    """

    name = "common.offline"

    def __init__(
        self,
        config: CommonConfig,
        *,
        kind: str = "device_offline",
        title: str = "Device offline",
        severity: Severity = Severity.MODERATE,
        name: str | None = None,
    ) -> None:
        self.config = config
        self.kind = kind
        self.title = title
        self.severity = severity
        self.name = name or self.name
        self.flags = Flags(self.name)
        self._index: dict[str, int] = {}
        self._ids: list[str] = []
        self._last = np.zeros(0)
        self._limit = np.zeros(0)
        self._offline = np.zeros(0, dtype=bool)
        # no device can go offline before this (deadlines only move later as devices
        # report), so most ticks return without touching the arrays
        self._next_deadline = math.inf

    def _grow(self, device_id: str, limit: float) -> int:
        i = len(self._ids)
        self._index[device_id] = i
        self._ids.append(device_id)
        if i >= len(self._last):
            n = max(64, 2 * len(self._last))
            self._last = np.resize(self._last, n)
            self._limit = np.resize(self._limit, n)
            self._offline = np.resize(self._offline, n)
        self._last[i] = 0.0
        self._limit[i] = limit
        self._offline[i] = False
        return i

    def limit_for(self, poll_s: float | None) -> float:
        c = self.config
        return max(c.min_offline_s, c.offline_intervals * (poll_s or c.default_poll_s))

    def seen(
        self,
        out: list[Detection],
        device_id: str,
        t: float,
        ts: datetime,
        poll_s: float | None,
        *,
        limit_s: float | None = None,
    ) -> None:
        i = self._index.get(device_id)
        if i is None:
            i = self._grow(device_id, limit_s or self.limit_for(poll_s))
            self._next_deadline = min(self._next_deadline, t + self._limit[i])
        if t > self._last[i]:
            self._last[i] = t
        if self._offline[i]:
            self._offline[i] = False
            self.flags.set(out, device_id, self.kind, ts, False, title=f"{self.title}: cleared")

    def tick(self, now: datetime) -> list[Detection]:
        out: list[Detection] = []
        n = len(self._ids)
        if n == 0:
            return out
        t = now.timestamp()
        if t <= self._next_deadline:
            return out
        deadline = self._last[:n] + self._limit[:n]
        late = t > deadline
        newly = np.flatnonzero(late & ~self._offline[:n])
        for i in newly:
            self._offline[i] = True
            dev = self._ids[i]
            silent = t - self._last[i]
            self.flags.set(
                out,
                dev,
                self.kind,
                datetime.fromtimestamp(self._last[i] + self._limit[i], UTC),
                True,
                severity=self.severity,
                title=self.title,
                message=f"No data from {dev} for {silent:.0f} s",
                value=float(silent),
            )
        waiting = deadline[~self._offline[:n]]
        self._next_deadline = float(waiting.min()) if len(waiting) else math.inf
        return out


class SeqGaps:
    """``seq_gap`` when a gateway's batch counter skips (batches were lost upstream).

    Repeated seqs are re-sends and are ignored; the gap clears on the next batch that
    follows its predecessor.
    """

    name = "common.seq_gap"

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self.flags = Flags(self.name)

    def observe(self, gateway_id: str, seq: int, ts: datetime | None = None) -> list[Detection]:
        out: list[Detection] = []
        ts = ts or datetime.now(UTC)
        last = self._last.get(gateway_id)
        if last is None:
            self._last[gateway_id] = seq
            return out
        if seq <= last:
            if seq < last - SEQ_RESET_BACKWARDS:
                log.warning("seq_reset gateway=%s last=%d seq=%d", gateway_id, last, seq)
                self._last[gateway_id] = seq
            return out
        self._last[gateway_id] = seq
        missing = seq - last - 1
        if missing > 0:
            self.flags.set(
                out,
                gateway_id,
                "seq_gap",
                ts,
                True,
                severity=Severity.MINOR,
                title="Gateway batches missing",
                message=f"{missing} batch(es) missing before seq {seq}",
                value=float(missing),
                extra={"missing": missing, "after_seq": last, "seq": seq},
                force=True,
            )
        else:
            self.flags.set(out, gateway_id, "seq_gap", ts, False, title="Gateway seq contiguous")
        return out
