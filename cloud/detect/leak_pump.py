"""Tank-zone leak tracking through the pump that fills the zone's tank (``pump_cycle``).

A zone fed from a tank has no inlet meter a night-flow rule could read: its only metered
inflow is the pump that refills the tank on level control (L-Town's PUMP_1 and T1). But
the pump starts at one tank level and stops at another, so between two starts (or two
stops) the tank ends where it began and the volume pumped equals what the zone drew. At
every pump start the cycle since the previous start therefore gives the zone's mean demand, leak
included, exactly, without knowing the tank's size or levels.

Each cycle is one period for :class:`~cloud.detect.leak_judge.LeakJudge`, with its share
of each local weekday (a cycle spans about a day, and weekend demand differs). A leak
shows first partly, in the cycle it started in, then fully in the next. A gap in the data
longer than ``MAX_GAP_S`` drops the cycle it falls in.
"""

from __future__ import annotations

from collections import deque

from cloud.detect.config import LeakConfig
from cloud.detect.leak_judge import WEEK, LeakJudge, LeakVerdict, Weekdays

DAY_S = 86400.0
MAX_GAP_S = 3600.0  # a longer gap in the data breaks the cycle: its volume is unknown


class PumpCycleTracker:
    """Feed (epoch s, pump flow) in time order; a verdict at each pump start."""

    __slots__ = ("_last_flow", "_last_t", "_on", "_phase_t", "_phase_vol", "cfg", "judge",
                 "phases")  # fmt: skip

    def __init__(self, cfg: LeakConfig) -> None:
        self.cfg = cfg
        self.judge = LeakJudge(cfg)
        self._on: bool | None = None
        self._last_t: float | None = None
        self._last_flow = 0.0
        self._phase_t: float | None = None  # start of the current phase (None: partial)
        self._phase_vol = 0.0
        self.phases: deque[tuple[float, float]] = deque(maxlen=2)  # (seconds, m³)

    def spoil(self) -> None:
        """Nothing to skip: a cycle's volume is the zone's demand whatever happened in it."""

    def add(self, t: float, flow: float) -> LeakVerdict | None:
        on = flow > self.cfg.pump_on_flow
        last_t = self._last_t
        self._last_t = t
        if last_t is not None and t - last_t > MAX_GAP_S:
            # volume unknown across the gap: start over from the next switch
            self._phase_t = None
            self.phases.clear()
        elif last_t is not None:
            self._phase_vol += self._last_flow * (t - last_t) / 3600.0
        self._last_flow = flow
        if self._on is None:
            self._on = on
            return None
        if on == self._on:
            return None
        return self._switch(t, on)

    def _switch(self, t: float, on: bool) -> LeakVerdict | None:
        start = self._phase_t
        self._on = on
        if start is not None:
            self.phases.append((t - start, self._phase_vol))
        self._phase_t, self._phase_vol = t, 0.0
        # judged at each start (start to start: the tank back at its start level); judging
        # at stops too would give overlapping cycles whose shared phase fakes agreement
        if start is None or len(self.phases) < 2 or not on:
            return None
        seconds = sum(s for s, _ in self.phases)
        volume = sum(v for _, v in self.phases)
        week = weekday_shares(t - seconds, t, self.cfg.utc_offset_h)
        return self._judge(t, week, volume / (seconds / 3600.0))

    def _judge(self, t: float, week: Weekdays, demand: float) -> LeakVerdict:
        judge = self.judge
        if len(judge.demand) < self.cfg.learn_nights:
            judge.learn(week, demand)  # the judge needs a reference first
            return LeakVerdict(t, demand, None, None, None)
        return judge.judge(t, week, demand)


def weekday_shares(start: float, end: float, utc_offset_h: float) -> Weekdays:
    """How much of [start, end) (epoch s) falls on each local weekday, Monday first."""
    shares = [0.0] * WEEK
    a, b = start + utc_offset_h * 3600.0, end + utc_offset_h * 3600.0
    while a < b:
        day = int(a // DAY_S)
        nxt = min(b, (day + 1) * DAY_S)
        shares[(day + 3) % 7] += nxt - a  # 1970-01-01 was a Thursday
        a = nxt
    total = sum(shares) or 1.0
    return tuple(x / total for x in shares)
