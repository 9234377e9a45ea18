"""The simulated clock shared by ``firmware_sim`` and the edge agent.

A scenario can run faster than real time (``akita sim run --speed 60``). The
simulator then writes a small JSON clock file; an edge agent whose config names
that file (``[gateway] clock_file``) timestamps readings and paces its polls in
simulated time, so the cloud sees the scenario's timeline, not the wall clock.

Simulated time is ``origin_sim + (time.time() - origin_real) * speed``.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)


class SimClock(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    origin_real: float = Field(description="Unix time (wall clock) at which the scenario started")
    origin_sim: float = Field(description="Unix time in the scenario at that moment")
    speed: float = Field(default=1.0, gt=0, le=10_000, description="Simulated s per real s")

    def now_ts(self) -> float:
        return self.origin_sim + (time.time() - self.origin_real) * self.speed

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ts(), UTC)

    def real_seconds(self, sim_seconds: float) -> float:
        """How long to sleep on the wall clock for ``sim_seconds`` of scenario time."""
        return sim_seconds / self.speed

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json())
        tmp.replace(path)  # atomic: a reader never sees half a file

    @classmethod
    def read(cls, path: Path) -> SimClock:
        return cls.model_validate_json(path.read_text())

    @classmethod
    def wall(cls) -> SimClock:
        now = time.time()
        return cls(origin_real=now, origin_sim=now, speed=1.0)


class ClockFile:
    """Wall time, or the simulator's clock file when one is configured.

    Used by the edge agent (``[gateway] clock_file``) and the cloud (``clock_file``
    setting) so both see the scenario's timeline. The file is re-read when it changes
    (a new scenario starts), at most once a second; until it exists the wall clock is used.
    """

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
