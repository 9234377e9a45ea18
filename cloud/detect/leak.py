"""Minimum-night-flow leak tracking for one water block (the statistic and its baseline).

Kept apart from :mod:`cloud.detect.water` because the BattLeDIM replay drives it alone.

Before ``learn_nights`` nights the block is young: a leak is then ``young_persist``
consecutive nights ``young_rise_frac`` above the median of the nights so far (coarse,
because weekday offsets are unknown yet; persistence keeps a busy Friday + Saturday from
alarming). Model: night value = level + day-of-week offset + noise. The level and the
offsets are learned from the block's own nights (median start, then a clipped EWMA);
sigma is the MAD of recent residuals with a floor. A leak is either one night far above
the baseline (abrupt: ``k_step`` sigmas and ``min_rise_frac`` of the level) or a CUSUM
of residuals (incipient). After an alarm the level is re-based onto the new normal so a
second leak on top of the first is a new step; a night back near the pre-leak level
clears it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from cloud.detect.config import LeakConfig

DAY_S = 86400.0
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class LeakVerdict:
    """What one closed night changed. ``event`` is onset | step | clear | None."""

    night_start: float  # epoch s of the local day the value belongs to
    value: float
    expected: float | None
    residual: float | None
    sigma: float | None
    event: str | None = None
    mode: str | None = None  # step | trend
    excess: float = 0.0  # total leak flow above the pre-leak baseline


class LeakTracker:
    """Feed (epoch s, flow) in time order; get a :class:`LeakVerdict` when a night closes."""

    __slots__ = (
        "_count",
        "_day",
        "_night_min",
        "_roll",
        "_roll_sum",
        "_sum",
        "active",
        "cfg",
        "cusum",
        "level",
        "offsets",
        "pre_level",
        "resid",
        "trend_base",
        "values",
        "young_excess",
        "young_streak",
    )

    def __init__(self, cfg: LeakConfig) -> None:
        self.cfg = cfg
        self._day: int | None = None
        self._night_min = math.inf
        self._roll: deque[tuple[float, float]] = deque()
        self._roll_sum = 0.0
        self._sum = 0.0
        self._count = 0
        self.values: deque[tuple[int, float]] = deque(maxlen=cfg.history_nights)
        self.resid: deque[float] = deque(maxlen=28)
        self.level: float | None = None
        self.offsets = np.zeros(7)
        self.cusum = 0.0
        self.trend_base = 0.0
        self.active = False
        self.pre_level = 0.0
        self.young_streak = 0
        self.young_excess = 0.0

    # ---- accumulation --------------------------------------------------------------
    def add(self, t: float, flow: float) -> LeakVerdict | None:
        c = self.cfg
        lt = t + c.utc_offset_h * 3600.0
        day = int(lt // DAY_S)
        verdict = None
        if self._day is not None and day != self._day:
            verdict = self._close()
        if self._day != day:
            self._day = day
            self._reset_day()
        hour = (lt - day * DAY_S) / 3600.0
        if c.statistic == "daily_mean":
            self._sum += flow
            self._count += 1
            return verdict
        if c.night_start_h <= hour < c.night_end_h:
            self._count += 1
            win = c.window_min * 60.0
            self._roll.append((t, flow))
            self._roll_sum += flow
            while self._roll and self._roll[0][0] <= t - win:
                self._roll_sum -= self._roll.popleft()[1]
            # only a (nearly) full window is a fair mean; a lone low sample is not a night
            if t - self._roll[0][0] >= 0.75 * win or len(self._roll) >= 12:
                mean = self._roll_sum / len(self._roll)
                if mean < self._night_min:
                    self._night_min = mean
        elif hour >= c.night_end_h and self._count and verdict is None:
            verdict = self._close()
        return verdict

    def _reset_day(self) -> None:
        self._night_min = math.inf
        self._roll.clear()
        self._roll_sum = 0.0
        self._sum = 0.0
        self._count = 0

    def _close(self) -> LeakVerdict | None:
        c = self.cfg
        day = self._day if self._day is not None else 0
        if c.statistic == "daily_mean":
            value = self._sum / self._count if self._count >= c.min_samples else math.nan
        else:
            value = self._night_min if self._count >= c.min_samples else math.nan
        self._reset_day()
        self._count = 0
        if not math.isfinite(value):
            return None
        # 1970-01-01 was a Thursday: (day + 3) % 7 makes Monday 0
        dow = (day + 3) % 7
        night_t = day * DAY_S - c.utc_offset_h * 3600.0
        return self._judge(night_t, dow, value)

    # ---- baseline and verdict ---------------------------------------------------------
    def _learn(self) -> None:
        vals = np.array([v for _, v in self.values])
        dows = np.array([d for d, _ in self.values])
        med = float(np.median(vals))
        for d in range(7):
            sel = vals[dows == d]
            self.offsets[d] = float(np.median(sel)) - med if len(sel) else 0.0
        self.level = float(np.median(vals - self.offsets[dows]))
        self.resid.extend((vals - self.offsets[dows] - self.level).tolist())

    def _young(self, night_t: float, value: float, prior: list[float]) -> LeakVerdict:
        c = self.cfg
        if self.active:
            # the baseline restarted at the leak level; a night back near the old one clears
            if value < self.pre_level + c.clear_frac * self.young_excess:
                self.active = False
                self._restart(1)
                return LeakVerdict(night_t, value, None, None, None, "clear")
            return LeakVerdict(night_t, value, None, None, None, excess=self.young_excess)
        if len(prior) < c.young_nights:
            return LeakVerdict(night_t, value, None, None, None)
        base = float(np.median(prior))
        r = value - base
        self.young_streak = self.young_streak + 1 if r > c.young_rise_frac * abs(base) else 0
        if self.young_streak < c.young_persist:
            return LeakVerdict(night_t, value, base, r, None)
        self.active = True
        self.pre_level = base
        self.young_excess = r
        # learn the new normal from the leak nights only, so old nights do not skew offsets
        self._restart(c.young_persist)
        return LeakVerdict(night_t, value, base, r, None, "onset", "young", r)

    def _restart(self, keep: int) -> None:
        kept = list(self.values)[-keep:]
        self.values.clear()
        self.values.extend(kept)
        self.young_streak = 0

    def sigma(self) -> float:
        c = self.cfg
        level = self.level or 0.0
        mad = 0.0
        if len(self.resid) >= 5:
            r = np.fromiter(self.resid, float)
            mad = MAD_TO_SIGMA * float(np.median(np.abs(r - np.median(r))))
        return max(mad, c.min_sigma_frac * abs(level), c.min_sigma_abs)

    def _judge(self, night_t: float, dow: int, value: float) -> LeakVerdict:
        c = self.cfg
        prior = [v for _, v in self.values]
        self.values.append((dow, value))
        if self.level is None:
            verdict = self._young(night_t, value, prior)
            if len(self.values) >= c.learn_nights:
                self._learn()
            return verdict
        expected = self.level + float(self.offsets[dow])
        r = value - expected
        s = self.sigma()
        adjusted = value - float(self.offsets[dow])
        event = mode = None
        step = r > c.k_step * s and r > c.min_rise_frac * abs(self.level)
        drop = r < -c.k_step * s
        if drop:
            # a repair (or a leak we never flagged ending): the new normal is lower
            old = self.level
            self.level = adjusted
            self.cusum = 0.0
            if self.active and adjusted < self.pre_level + c.clear_frac * (old - self.pre_level):
                self.active = False
                event = "clear"
        else:
            if self.cusum == 0.0:
                self.trend_base = self.level  # where a slow rise, if this is one, began
            self.cusum = max(0.0, self.cusum + r / s - c.cusum_k)
            trend = self.cusum > c.cusum_h and r > 0
            if step or trend:
                mode = "step" if step else "trend"
                if not self.active:
                    # a slow leak was partly absorbed by the EWMA before the CUSUM fired:
                    # the pre-leak level is where the residuals started to accumulate
                    self.pre_level = self.trend_base if mode == "trend" else self.level
                event = "step" if self.active else "onset"
                self.active = True
                self.level = adjusted
                self.cusum = 0.0
            else:
                clipped = max(-2.0 * s, min(2.0 * s, r))
                self.level += c.level_alpha * clipped
                self.offsets[dow] += c.level_alpha * 0.5 * clipped
                self.resid.append(r)
        excess = (self.level - self.pre_level) if self.active else 0.0
        return LeakVerdict(night_t, value, expected, r, s, event, mode, excess)
