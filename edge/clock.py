"""The agent's clock: wall time, or the simulator's :class:`schemas.clock.SimClock` file.

With ``[gateway] clock_file`` readings are timestamped and polls paced in simulated
time. The file is re-read when it changes (a new scenario starts), at most once a
second; until it exists the wall clock is used.
"""

from __future__ import annotations

import asyncio
import time

from schemas.clock import ClockFile


class Clock(ClockFile):
    """The shared file-following clock, plus sleeping in simulated time."""

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
