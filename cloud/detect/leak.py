"""Minimum-night-flow leak tracking for one water block (the statistic and its baseline).

Kept apart from :mod:`cloud.detect.water` because the BattLeDIM replay drives it alone.

Before ``learn_nights`` nights the block is young: a leak is then ``young_persist``
consecutive nights ``young_rise_frac`` above the median of the nights so far (coarse,
because weekday factors are unknown yet; persistence keeps a busy Friday + Saturday from
alarming).

Learned block. Model: night = base × weekday factor + leak + noise. ``base`` is the
leak-free level; it follows seasonal demand by a clipped EWMA on quiet nights and is
frozen while a rise is being accumulated, so a leak is not learned as normal. A
two-sided CUSUM on the residual in robust sigmas is the change-point test: ``cusum_h``
up (or one night ``k_step`` sigmas up) is a rise, the same down is a fall. The size of a
change is the mean residual since its CUSUM run began, so the alert carries the leak's
estimated flow in m³/h. A rise with no leak open is a new leak (``onset``, an alarm);
with one open it is ``step`` (a new alarm: one night's jump, another leak) or ``grown``
(the same leak growing: an update, not a second alarm). A fall shrinks the open leak (a
repair) and clears it once less than ``clear_frac`` of its peak remains; with none open
it is a lower demand, and the base follows it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from cloud.detect.config import LeakConfig

DAY_S = 86400.0
STEP_NIGHTS = 2  # a rise completed within this many nights is a step, else a trend
# A rise (not a one-night jump) within this many nights of the open leak's last rise is
# that leak growing: the alert is updated ("grown"), no second alarm is raised. Later
# rises are new alarms, so a leak estimate left open by a missed repair cannot hide them.
GROWN_NIGHTS = 7
REPAIR_NIGHTS = 2  # consecutive nights nearer the no-leak level than the leak level
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
        "below",
        "cfg",
        "cusum",
        "cusum_down",
        "last_rise",
        "leak",
        "level",
        "offsets",
        "peak",
        "pre_level",
        "resid",
        "run_n",
        "run_sum",
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
        self.resid: deque[float] = deque(maxlen=56)
        self.level: float | None = None
        self.offsets = np.ones(7)  # multiplicative weekday factors
        self.cusum = 0.0
        self.cusum_down = 0.0
        self.run_sum = 0.0
        self.run_n = 0
        self.below = 0
        self.last_rise = -math.inf  # night number of the last rise
        self.leak = 0.0  # estimated flow of the open leak(s), m³/h
        self.peak = 0.0
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

    def sigma(self, expected: float) -> float:
        c = self.cfg
        mad = 0.0
        if len(self.resid) >= 5:
            r = np.fromiter(self.resid, float)
            mad = MAD_TO_SIGMA * float(np.median(np.abs(r - np.median(r))))
        return max(mad, c.min_sigma_frac * abs(expected), c.min_sigma_abs)

    def _learn(self) -> None:
        vals = np.array([v for _, v in self.values])
        dows = np.array([d for d, _ in self.values])
        med = float(np.median(vals)) or 1.0
        for d in range(7):
            sel = vals[dows == d]
            self.offsets[d] = float(np.median(sel)) / med if len(sel) else 1.0
        self.offsets /= self.offsets.mean()
        self.level = float(np.median(vals / self.offsets[dows]))
        self.resid.extend((vals - self.offsets[dows] * self.level).tolist())

    def _judge(self, night_t: float, dow: int, value: float) -> LeakVerdict:
        c = self.cfg
        prior = [v for _, v in self.values]
        self.values.append((dow, value))
        if self.level is None:
            verdict = self._young(night_t, value, prior)
            if len(self.values) >= c.learn_nights:
                self._learn()
                if self.active and self.level is not None:
                    # a young leak is open: its flow is part of the learned nights
                    self.level -= self.young_excess
                    self.leak = self.peak = self.young_excess
            return verdict
        w = float(self.offsets[dow])
        expected = self.level * w + self.leak
        r = value - expected
        s = self.sigma(expected)
        z = r / s
        if self.cusum == 0.0 and self.cusum_down == 0.0:
            self.run_sum, self.run_n = 0.0, 0
        self.run_sum += r
        self.run_n += 1
        self.cusum = max(0.0, self.cusum + z - c.cusum_k)
        self.cusum_down = max(0.0, self.cusum_down - z - c.cusum_k)
        event = mode = None
        # a repair: nights closer to the no-leak expectation than to the leak's
        self.below = self.below + 1 if self.leak > 0.0 and r < -0.5 * self.leak else 0
        if self.below >= REPAIR_NIGHTS:
            self.leak = self.peak = 0.0
            self.active = False
            self.below = 0
            self._reset_run()
            return LeakVerdict(night_t, value, expected, r, s, "clear", None, 0.0)
        if z > c.k_step or self.cusum > c.cusum_h:
            # one night far above: that night's residual is the leak; a CUSUM crossing: the
            # mean residual since its run began. With a leak open, only a one-night jump is
            # another leak (a new alarm); anything slower is the open leak growing.
            jump = z > c.k_step
            mean = self.run_sum / self.run_n
            size = r if jump or mean <= 0.0 else mean
            mode = "step" if jump or self.run_n <= STEP_NIGHTS else "trend"
            night = night_t / DAY_S
            growing = self.leak > 0.0 and night - self.last_rise <= GROWN_NIGHTS
            slow = self.run_n > STEP_NIGHTS
            event = "grown" if growing and slow else ("step" if self.leak > 0 else "onset")
            self.last_rise = night
            self.active = True
            self.leak += size
            self.peak = max(self.peak, self.leak)
            self._reset_run()
        elif z < -c.k_step or self.cusum_down > c.cusum_h:
            size = min(r, self.run_sum / self.run_n)
            if self.leak > 0.0:
                self.leak = max(0.0, self.leak + size)
                if self.leak < c.clear_frac * self.peak:
                    # repaired: whatever is left is demand the base should carry
                    self.level += self.leak / w
                    self.leak = self.peak = 0.0
                    self.active = False
                    event = "clear"
            else:
                self.level += size / w
            self._reset_run()
        else:
            self.resid.append(r)
            if self.cusum == 0.0 and self.cusum_down == 0.0:
                # quiet night: follow seasonal demand, but never faster than 2 sigmas a night
                clipped = max(-2.0 * s, min(2.0 * s, r))
                self.level += c.level_alpha * clipped / w
                ratio = (value - self.leak) / self.level if self.level > 0 else w
                self.offsets[dow] += c.level_alpha * 0.5 * (ratio - w)
        return LeakVerdict(night_t, value, expected, r, s, event, mode, self.leak)

    def _reset_run(self) -> None:
        self.cusum = self.cusum_down = 0.0
        self.run_sum, self.run_n = 0.0, 0
