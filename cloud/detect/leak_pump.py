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

A pump that runs far longer than usual is itself the sign, before its cycle ends (and a
leak larger than the pump's spare capacity keeps it running for ever, so no cycle would
ever end): the tank swings by a fixed volume between the pump's start and stop levels
(learnt per cycle as demand × off time), so a pump still running after ``tau`` hours at
mean rate ``Q`` means the zone draws at least ``Q - swing / tau``. The demand while the
pump runs is not the cycle's mean (a run spans the day's peak), so it is learnt too, as
a ratio to the cycle's demand; checked hourly while the pump runs, the lower bound
``OVERRUN_SIGMAS`` of that ratio's spread above the expected run demand is an alarm (the
judge then holds the leak open, and the cycle's own verdict re-sizes it when it ends).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from cloud.detect.config import LeakConfig
from cloud.detect.leak_judge import (
    GROWN_NIGHTS,
    MAD_TO_SIGMA,
    WEEK,
    LeakJudge,
    LeakVerdict,
    Weekdays,
)

DAY_S = 86400.0
MAX_GAP_S = 3600.0  # a longer gap in the data breaks the cycle: its volume is unknown
OVERRUN_CHECK_S = 3600.0  # how often a running pump's lower bound is checked
MIN_SWINGS = 7  # full cycles needed before the swing and the run demand are trusted
OVERRUN_SIGMAS = 5.0  # lower bound above the expected run demand, in its own sigmas


class PumpCycleTracker:
    """Feed (epoch s, pump flow) in time order; a verdict at each pump start."""

    __slots__ = ("_checked", "_last_flow", "_last_t", "_on", "_phase_t", "_phase_vol", "cfg",
                 "judge", "on_ratios", "phases", "ref", "swings")  # fmt: skip

    def __init__(self, cfg: LeakConfig) -> None:
        self.cfg = cfg
        self.judge = LeakJudge(cfg)
        self._on: bool | None = None
        self._last_t: float | None = None
        self._last_flow = 0.0
        self._phase_t: float | None = None  # start of the current phase (None: partial)
        self._phase_vol = 0.0
        self.phases: deque[tuple[float, float]] = deque(maxlen=2)  # (seconds, m³)
        self.swings: deque[float] = deque(maxlen=cfg.history_nights)  # m³ per cycle
        # demand while the pump ran / the cycle's demand, per cycle
        self.on_ratios: deque[float] = deque(maxlen=cfg.history_nights)
        self._checked = -math.inf  # last overrun check (epoch s); +inf: alarmed this phase
        # the judge's weekday factors and reference level, fixed during a pump run
        self.ref: tuple[np.ndarray, float] | None = None

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
            return self._overrun(t) if on else None
        return self._switch(t, on)

    def _overrun(self, t: float) -> LeakVerdict | None:
        """The pump still runs: is it running longer than the zone's demand allows?"""
        start, judge = self._phase_t, self.judge
        if start is None or t - self._checked < OVERRUN_CHECK_S or len(self.swings) < MIN_SWINGS:
            return None
        if len(judge.demand) < self.cfg.learn_nights:
            return None
        self._checked = t
        tau_h = (t - start) / 3600.0
        least = self._phase_vol / tau_h - float(np.median(self.swings)) / tau_h
        if self.ref is None:
            f = judge.factors()
            self.ref = (f, judge.level(f))
        f, level = self.ref
        w = float(np.dot(weekday_shares(start, t, self.cfg.utc_offset_h), f))
        ratios = np.array(self.on_ratios)
        ratio = float(np.median(ratios))
        cycle = level * w
        expected = ratio * cycle + judge.leak
        spread = MAD_TO_SIGMA * float(np.median(np.abs(ratios - ratio))) * cycle
        s = max(spread, self.cfg.min_sigma_abs, self.cfg.min_sigma_frac * cycle)
        if least - expected <= OVERRUN_SIGMAS * s:
            return None
        self._checked = math.inf  # one alarm per pump run
        event = "onset"
        if judge.leak > 0.0:
            # a leak found in the last cycles: the pump running on is that leak showing
            # in full (its first cycle held only part of it), not another one
            event = "grown" if judge.n - judge.last_rise <= GROWN_NIGHTS else "step"
        size = judge.leak + least - expected
        judge.adopt(size)
        return LeakVerdict(t, least, expected, least - expected, s, event, "overrun", size)

    def _switch(self, t: float, on: bool) -> LeakVerdict | None:
        start = self._phase_t
        self._on = on
        if start is not None:
            self.phases.append((t - start, self._phase_vol))
        self._phase_t, self._phase_vol = t, 0.0
        self._checked = -math.inf
        self.ref = None
        # judged at each start (start to start: the tank back at its start level); judging
        # at stops too would give overlapping cycles whose shared phase fakes agreement
        if start is None or len(self.phases) < 2 or not on:
            return None
        seconds = sum(s for s, _ in self.phases)
        volume = sum(v for _, v in self.phases)
        # the tank's swing: what the zone drew while the pump was off; and what it drew
        # while the pump ran, against the whole cycle
        demand = volume / seconds
        (on_s, on_vol), (off_s, _) = self.phases
        swing = demand * off_s
        self.swings.append(swing)
        if on_s > 0.0 and demand > 0.0:
            self.on_ratios.append((on_vol - swing) / on_s / demand)
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
