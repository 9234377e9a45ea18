"""The agent's clock: wall time, or the simulator's :class:`schemas.clock.SimClock` file.

With ``[gateway] clock_file`` readings are timestamped and polls paced in simulated
time. The file is re-read when it changes (a new scenario starts), at most once a
second; until it exists the wall clock is used.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from schemas.clock import SimClock

log = logging.getLogger(__name__)


class Clock:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._sim = SimClock.wall()
        self._mtime = -1.0
        self._checked = 0.0
        self._refresh(force=True)

    def _refresh(self, *, force: bool = False) -> None:
        if self.path is None:
            return
        mono = time.monotonic()
        if not force and mono - self._checked < 1.0:
            return
        self._checked = mono
        try:
            mtime = self.path.stat().st_mtime
            if mtime == self._mtime:
                return
            self._sim = SimClock.read(self.path)
            self._mtime = mtime
            log.info("clock_loaded file=%s speed=%s", self.path, self._sim.speed)
        except FileNotFoundError:
            if self._mtime != -1.0:
                log.warning("clock_missing file=%s using=wall", self.path)
                self._sim, self._mtime = SimClock.wall(), -1.0
        except (OSError, ValidationError, ValueError) as exc:
            log.warning("clock_unreadable file=%s reason=%s", self.path, exc)

    @property
    def speed(self) -> float:
        return self._sim.speed

    def now_ts(self) -> float:
        self._refresh()
        return self._sim.now_ts()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ts(), UTC)

    async def sleep(self, sim_seconds: float) -> None:
        await self.sleep_until(self.now_ts() + sim_seconds)

    async def sleep_until(self, sim_ts: float) -> None:
        """Sleep until the clock reads ``sim_ts``; wakes each second to follow clock changes."""
        while True:
            remaining = (sim_ts - self.now_ts()) / self._sim.speed
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, 1.0))


def iso_ms(ts: float) -> str:
    """Wire timestamp: ISO 8601 UTC with milliseconds and a Z."""
    ms = round(ts * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
