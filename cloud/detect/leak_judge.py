"""The change-point judge behind every leak statistic (night flow, pump cycles).

It takes one value per period (a night's flow, a tank zone's demand per pump cycle) and
decides whether a leak started, grew or was repaired. Model: value = demand + open leak
+ noise, demand = reference level × weekday factor.

Why a moving robust reference and not a tracked level: a level that is only updated on
quiet nights drifts whenever a leak is missed or mis-sized, and the residuals it then
produces inflate sigma until nothing is judged any more. Here the reference is the
median of the last ``ref_nights`` demands (value minus the open leak estimate), so any
error is forgotten within a week or two, and sigma comes from period-to-period
differences, which a missed leak barely touches.

* No leak open: a two-sided CUSUM of residual / sigma (``cusum_k``, ``cusum_h``) or one
  period ``k_step`` sigmas up is an onset (an alarm). Its size is the mean residual of the
  CUSUM run, or the period's residual for a jump.
* A leak open: for ``GROWN_NIGHTS`` periods after its last rise the reference is frozen
  at the onset and the size is re-estimated as the median excess of the last three
  periods, so a partial first night is corrected and an incipient leak's growth is
  followed (``grown``: the alert is updated, no second alarm); one period ``k_step``
  sigmas above the open leak is another leak (``step``, an alarm). Afterwards the CUSUM runs
  on the residual against reference + leak: a rise is another leak (``step``, an alarm).
* Repair: ``REPAIR_NIGHTS`` periods nearer the no-leak level than the leak level (or,
  for a leak re-sized to within a sigma, also under a sigma) clear it,
  unless they still stand ``REMAIN_SIGMAS`` above the no-leak level: then one of several
  open leaks was repaired and the rest stays open, re-sized (``reduced``: the alert is
  updated, no clear and no new alarm). Clearing all of them there made the other
  statistic's next period raise the remaining leak as a new alarm, every day (2018
  January–June: five night alarms in five days after p673's repair while p461 ran on).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cloud.detect.config import LeakConfig

MAD_TO_SIGMA = 1.4826
WEEK = 7
# the reference is a line fitted to ref_nights noisy periods and extrapolated one ahead
REF_WIDEN = 1.1
RIDGE = 0.1  # pull of the fitted weekday factors towards 1 (a week seen once is noisy)
Weekdays = tuple[float, ...]  # a period's share of each weekday, Monday first
STEP_NIGHTS = 2  # a rise completed within this many periods is a step, else a trend
GROWN_NIGHTS = 7  # periods after a rise in which further rises are the same leak growing
REPAIR_NIGHTS = 2  # consecutive periods nearer the no-leak level than the leak level
REFINE_LAST = 3  # the size is the median excess of this many recent periods
# a size update is reported as "grown" only past noise and by a quarter of the leak
GROWN_SIGMAS = 2.0
GROWN_FRAC = 0.25
# ... and as another leak (an alarm) when it at least doubled by this many sigmas: a leak
# found while another (or a false onset) is open would otherwise pass as growth
NEW_LEAK_SIGMAS = 3.0
NEW_LEAK_FACTOR = 2.0
# a repair that leaves the flow this many sigmas above the no-leak level (and a quarter
# below the open leak) repaired one of several leaks: the rest stays open, smaller
REMAIN_SIGMAS = 3.0
# events that update the open leak's alert instead of raising an alarm
UPDATE_EVENTS = frozenset({"grown", "reduced"})


@dataclass(frozen=True, slots=True)
class LeakVerdict:
    """What one judged period changed. ``event`` is onset | step | grown | clear | None."""

    night_start: float  # epoch s of the period the value belongs to
    value: float
    expected: float | None
    residual: float | None
    sigma: float | None
    event: str | None = None
    mode: str | None = None  # step | trend | young
    excess: float = 0.0  # estimated leak flow (m³/h) above the no-leak reference
    statistic: str | None = None  # the judged statistic when not the block's own


def _mad_sigma(x: np.ndarray) -> float:
    return MAD_TO_SIGMA * float(np.median(np.abs(x - np.median(x))))


def weekday_factors(d: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Per-weekday factors (mean 1) of values ``d`` with weekday shares ``a`` (periods x 7):
    see :meth:`LeakJudge.factors`."""
    if len(d) < 7:
        return np.ones(WEEK)
    week = np.median(sliding_window_view(np.pad(d, 3, mode="edge"), 7), axis=1)
    ratio = d / np.where(week > 0, week, 1.0)
    if np.all(a.max(axis=1) == 1.0):
        col = a.argmax(axis=1)
        f = np.array([float(np.median(ratio[col == k])) if (col == k).any() else 1.0
                      for k in range(WEEK)])  # fmt: skip
    else:
        f = np.linalg.solve(a.T @ a + RIDGE * np.eye(WEEK), a.T @ ratio + RIDGE)
    return f / f.mean()


class LeakJudge:
    """One value per period in, a :class:`LeakVerdict` out (see the module doc)."""

    __slots__ = (
        "_f",
        "adopted",
        "below",
        "below_excess",
        "cfg",
        "cusum",
        "cusum_down",
        "demand",
        "excesses",
        "frozen",
        "last",
        "last_rise",
        "leak",
        "n",
        "partial_first",
        "peak",
        "reported",
        "run_n",
        "run_sum",
        "subtracted",
    )

    def __init__(self, cfg: LeakConfig, partial_first: bool | None = None) -> None:
        self.cfg = cfg
        # a leak's first period usually holds only part of it (a day's mean, a pump cycle:
        # it starts mid-period), so the next one showing more is the same leak; a night
        # window is short, so more the next night is more likely another leak
        self.partial_first = (
            cfg.statistic in ("daily_mean", "pump_cycle")
            if partial_first is None
            else partial_first
        )
        # (weekday shares, demand = value minus the leak estimate of its time)
        self.demand: deque[tuple[Weekdays, float]] = deque(maxlen=cfg.history_nights)
        self.n = 0  # periods judged
        self._f = np.ones(WEEK)
        self.leak = 0.0
        self.peak = 0.0
        self.reported = 0.0  # size in the last alert, for "grown"
        self.frozen: float | None = None  # reference level at the open leak's last rise
        self.excesses: list[float] = []
        self.last_rise = -math.inf
        # (flow above the no-leak level, sigma) of the last judged period, for the other
        # statistic of the block to check its own alarm against
        self.last: tuple[float, float] | None = None
        self.below = 0
        self.below_excess: list[float] = []  # excess over no leak in those periods
        self.cusum = self.cusum_down = 0.0
        self.run_sum, self.run_n = 0.0, 0
        self.adopted = False  # the open leak was found by another statistic of the block
        self.subtracted: list[float] = []  # leak taken off each period's demand since it opened

    # ---- another statistic of the same block ------------------------------------------
    def adopt(self, size: float) -> None:
        """Another statistic of this block found a leak (open leaks now ``size`` m³/h in
        all): hold it open here too, with no alarm of this judge's own, and re-size it
        over the next periods against the reference of now. The first of those periods
        may show more of it than ``size`` (the other statistic saw part of a day): that
        is the same leak, not a new one."""
        f = self._f = self.factors()
        self.frozen = self.level(f)
        self.leak = self.peak = self.reported = max(size, 0.0)
        self.excesses = []
        self.last_rise = self.n - 1.0
        self.below, self.below_excess = 0, []
        self.adopted = True
        self._reset_run()

    def drop(self, restore: bool = False) -> None:
        """No leak open any more. ``restore``: another statistic of this block decided it,
        so the leak this judge took off its periods since the leak opened is put back: if
        that statistic's alarm was noise, this judge's reference would otherwise stay
        below the demand and see a leak in every later period (a repaired real leak put
        back lifts the reference instead, which the fall rule below rebases)."""
        if restore:
            n = len(self.demand)
            for k, leak in enumerate(reversed(self.subtracted[-n:])):
                w, v = self.demand[n - 1 - k]
                self.demand[n - 1 - k] = (w, v + leak)
        self.subtracted = []
        self.leak = self.peak = self.reported = 0.0
        self.frozen = None
        self.excesses = []
        self.below, self.below_excess = 0, []
        self.adopted = False
        self._reset_run()

    # ---- the reference ----------------------------------------------------------------
    def seed(self, history: list[tuple[Weekdays, float]], leak: float) -> None:
        """Start from learnt periods (demand already net of ``leak``), a leak maybe open."""
        self.demand.extend(history)
        if leak > 0.0:
            self.leak = self.peak = self.reported = leak
            self.last_rise = -math.inf

    def learn(self, week: Weekdays, value: float) -> None:
        """Take a leak-free period into the reference without judging it."""
        self.demand.append((week, value))

    def factors(self) -> np.ndarray:
        """Per-weekday multiplicative factors, normalised to mean 1.

        Each demand is divided by the median of the week around it first, so a season's
        rise or a missed leak does not leak into the weekday factors. A period on one
        weekday (a night) votes by median; periods spread over weekdays (pump cycles) are
        fitted by least squares on their weekday shares, pulled gently towards 1."""
        d = np.array([v for _, v in self.demand])
        a = np.array([w for w, _ in self.demand]).reshape(-1, WEEK)
        return weekday_factors(d, a)

    def level(self, f: np.ndarray) -> float:
        """The reference for the next period: a robust line (Theil-Sen) through the last
        ``ref_nights`` weekday-normalised demands, one period ahead. A plain median would
        lag a season's rise by half its window and read the lag as a leak."""
        recent = list(self.demand)[-self.cfg.ref_nights :]
        y = np.array([v / float(np.dot(w, f)) for w, v in recent])
        x = np.arange(len(y), dtype=float)
        if len(y) < 7:
            return float(np.median(y))
        i, j = np.triu_indices(len(y), 1)
        slope = float(np.median((y[j] - y[i]) / (x[j] - x[i])))
        return float(np.median(y - slope * x)) + slope * len(y)

    def sigma(self, expected: float, factor: float, f: np.ndarray) -> float:
        """Period-to-period noise: MAD of consecutive differences of the weekday-normalised
        demand over the history, / sqrt 2, widened for the reference's own error. Why
        differences: a leak's step or a repair touches one difference, while residuals
        against a reference that a missed leak moved would all be large, inflate sigma and
        hide the next leak."""
        c = self.cfg
        noise = 0.0
        if len(self.demand) >= 8:
            y = np.array([v / float(np.dot(w, f)) for w, v in self.demand])
            noise = factor * REF_WIDEN * _mad_sigma(np.diff(y)) / math.sqrt(2.0)
        return max(noise, c.min_sigma_frac * abs(expected), c.min_sigma_abs)

    # ---- the verdict ------------------------------------------------------------------
    def judge(self, t: float, week: Weekdays, value: float) -> LeakVerdict:
        """Judge one period; ``week`` is its share of each weekday (Monday first)."""
        f = self._f = self.factors()
        w = float(np.dot(week, f))
        lvl = self.level(f)
        night = float(self.n)
        self.n += 1
        if self.leak > 0.0 and night - self.last_rise <= GROWN_NIGHTS and self.frozen is not None:
            v = self._refine(t, value, w, self.frozen)
        else:
            v = self._cusum(t, value, w, lvl, night)
        self.demand.append((week, value - self.leak))
        if self.leak > 0.0:
            self.subtracted.append(self.leak)
        else:
            self.subtracted = []
        return v

    def _refine(self, t: float, value: float, w: float, ref: float) -> LeakVerdict:
        """A leak just rose: re-size it against the reference frozen at the rise."""
        base = ref * w
        excess = value - base
        s = self.sigma(base, w, self._f)
        self.last = (excess, s)
        # a leak re-sized to within noise that this period does not show either is no leak
        # (a false alarm's estimate falls there: held open, it took the next real leak for
        # its growth, with no alarm: synthetic seed 9, an 11.9 m³/h tank-zone leak)
        gone = self.leak < s and excess < s
        self._count_below(excess < 0.5 * self.leak or gone, excess)
        # a repair: a few periods nearer no leak, or one far below the leak level
        if self.below >= REPAIR_NIGHTS or (self.below and self.leak - excess > self.cfg.k_step * s):
            return self._repaired(t, value, base, s, ref)
        adopted, self.adopted = self.adopted, False
        # how far this period jumped beyond the open leak's own growth: a new leak jumps,
        # a growing one climbs period by period (2018: p628 grew ~5 m³/h a day to its peak,
        # and each day was raised as another leak)
        ex = self.excesses
        prev = ex[-1] if ex else self.leak
        climb = max(ex[-1] - ex[-2], 0.0) if len(ex) >= 2 else 0.0
        jump = excess - prev - climb
        if excess - self.leak > self.cfg.k_step * s and jump > self.cfg.k_step * s and not adopted:
            # one period far above the open leak: another leak, not this one growing
            self.excesses = [excess]
            self.leak = self.peak = self.reported = excess
            self.last_rise = self.n - 1.0
            self.adopted = self.partial_first  # its next period may show more (see _rise)
            return LeakVerdict(t, value, base, excess, s, "step", "step", excess)
        self.excesses.append(excess)
        size = max(float(np.median(self.excesses[-REFINE_LAST:])), 0.0)
        event = None
        if size > self.reported + max(GROWN_SIGMAS * s, GROWN_FRAC * self.reported):
            event = "grown"
            doubled = size >= NEW_LEAK_FACTOR * self.reported
            big = size - self.reported > NEW_LEAK_SIGMAS * s and jump > NEW_LEAK_SIGMAS * s
            if doubled and big and not adopted:
                event = "step"
            self.reported = size
            self.last_rise = self.n - 1.0
        self.leak = size
        self.peak = max(self.peak, size)
        return LeakVerdict(t, value, base + self.leak, value - base - self.leak, s, event,
                           "step" if event else None, self.leak)  # fmt: skip

    def _count_below(self, below: bool, excess: float) -> None:
        self.below = self.below + 1 if below else 0
        self.below_excess = [*self.below_excess, excess] if below else []

    def _repaired(self, t: float, value: float, base: float, s: float, ref: float) -> LeakVerdict:
        """The flow fell towards the no-leak level ``base``: clear, unless what is left
        (the mean excess of the periods that fell) is still a leak (see the module doc)."""
        left = float(np.mean(self.below_excess)) if self.below_excess else value - base
        if left <= REMAIN_SIGMAS * s or left > (1.0 - GROWN_FRAC) * self.peak:
            return self._clear(t, value, base, value - base, s)
        self.frozen = ref
        self.leak = self.peak = self.reported = left
        self.excesses = [left]
        self.last_rise = self.n - 1.0
        self.below, self.below_excess = 0, []
        self._reset_run()
        return LeakVerdict(t, value, base + left, value - base - left, s, "reduced", None, left)

    def _clear(self, t: float, value: float, exp: float, r: float, s: float) -> LeakVerdict:
        self.drop()
        return LeakVerdict(t, value, exp, r, s, "clear", None, 0.0)

    def _cusum(self, t: float, value: float, w: float, lvl: float, night: float) -> LeakVerdict:
        c = self.cfg
        expected = lvl * w + self.leak
        r = value - expected
        s = self.sigma(expected, w, self._f)
        z = r / s
        self.last = (r + self.leak, s)
        self._count_below(self.leak > 0.0 and r < -0.5 * self.leak, r + self.leak)
        if self.below >= REPAIR_NIGHTS:
            return self._repaired(t, value, lvl * w, s, lvl)
        if self.cusum == 0.0 and self.cusum_down == 0.0:
            self.run_sum, self.run_n = 0.0, 0
        self.run_sum += r
        self.run_n += 1
        self.cusum = max(0.0, self.cusum + z - c.cusum_k)
        self.cusum_down = max(0.0, self.cusum_down - z - c.cusum_k)
        if z > c.k_step or self.cusum > c.cusum_h:
            return self._rise(t, value, expected, r, s, z > c.k_step, lvl, night)
        event = None
        if z < -c.k_step or self.cusum_down > c.cusum_h:
            if self.leak > 0.0:
                self.leak = max(0.0, self.leak + min(r, self.run_sum / self.run_n))
                if self.leak < c.clear_frac * self.peak:
                    self.below_excess = [self.leak]
                    return self._repaired(t, value, lvl * w, s, lvl)
            else:
                # demand fell (a leak the reference had absorbed was repaired, say): move
                # the periods before the fall to the new level at once
                self._rebase(self.run_sum / self.run_n / w, self.run_n - 1)
            self._reset_run()
        return LeakVerdict(t, value, expected, r, s, event, None, self.leak)

    def _rebase(self, delta: float, keep_last: int) -> None:
        """Shift the stored demands, but the last ``keep_last``, by ``delta`` (normalised)."""
        f = self._f
        n = len(self.demand)
        for i in range(max(0, n - keep_last)):
            w, v = self.demand[i]
            self.demand[i] = (w, v + delta * float(np.dot(w, f)))

    def _rise(
        self,
        t: float,
        value: float,
        expected: float,
        r: float,
        s: float,
        jump: bool,
        lvl: float,
        night: float,
    ) -> LeakVerdict:
        mean = self.run_sum / self.run_n
        size = r if jump or mean <= 0.0 else mean
        mode = "step" if jump or self.run_n <= STEP_NIGHTS else "trend"
        # on top of an open leak, a slow rise is that leak growing (the alert is updated);
        # a quick one is another leak (an alarm)
        event = "onset" if self.leak <= 0.0 else ("step" if mode == "step" else "grown")
        # the no-leak level the leak is sized against while it settles (excess = all leaks)
        self.frozen = lvl
        self.excesses = [self.leak + size]
        self.leak += size
        self.peak = max(self.peak, self.leak)
        self.reported = self.leak
        self.last_rise = night
        # the next period may show more of this leak than a partial first one did (a leak
        # starting mid-day): that is the same leak, as after another statistic's alarm
        self.adopted = self.partial_first
        self._reset_run()
        return LeakVerdict(t, value, expected, r, s, event, mode, self.leak)

    def _reset_run(self) -> None:
        self.cusum = self.cusum_down = 0.0
        self.run_sum, self.run_n = 0.0, 0
