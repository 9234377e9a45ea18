"""Water-distribution block (DMA) inlet: diurnal demand, head-loss pressure, totaliser.

Demand is a 4-harmonic Fourier fit of typical Japanese residential hourly multipliers,
one curve for weekdays and one (later, flatter morning) for weekends, normalised to a
daily mean of 1. The night minimum (03:00-04:00 JST) is about 40 % of the mean: what
remains is legitimate night use plus background leakage.

Pressure at the block inlet follows the Hazen-Williams head loss of the trunk main,
``p = p_static - k · Q^1.852``. The totaliser integrates the deterministic part of the
flow in closed form (the Fourier series integrates exactly), so it is consistent with
flow at any ``t`` without stepping.

Faults: ``leak`` adds a constant flow from its start (raises the night minimum),
``burst`` adds a large flow that ramps up in two minutes and stops when the main is
isolated (pressure collapses through the head loss), ``stuck`` freezes the pressure
register at the value it had when the sensor stuck.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from firmware_sim import noise
from firmware_sim.models.base import DeviceModel, Window
from firmware_sim.timebase import HOUR_S, is_weekend, local_day, local_hour

WEEKDAY = [0.55, 0.45, 0.40, 0.38, 0.42, 0.65, 1.15, 1.50, 1.40, 1.15, 1.05, 1.05,
           1.10, 1.00, 0.95, 0.95, 1.05, 1.25, 1.40, 1.45, 1.35, 1.20, 0.95, 0.75]  # fmt: skip
WEEKEND = [0.60, 0.50, 0.43, 0.40, 0.40, 0.48, 0.70, 1.00, 1.30, 1.45, 1.40, 1.30,
           1.25, 1.10, 1.00, 0.98, 1.05, 1.20, 1.35, 1.40, 1.30, 1.15, 0.95, 0.78]  # fmt: skip
WEEKEND_VOLUME = 1.05  # a little more water is used at home at weekends
HARMONICS = 4
HW_EXPONENT = 1.852


def _fourier(hourly: list[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    v = np.asarray(hourly, dtype=float)
    v = v / v.mean()
    h = np.arange(24) + 0.5
    a = tuple(float(2.0 / 24 * np.sum(v * np.cos(2 * np.pi * k * h / 24))) for k in range(1, 5))
    b = tuple(float(2.0 / 24 * np.sum(v * np.sin(2 * np.pi * k * h / 24))) for k in range(1, 5))
    return a, b


_COEF = {False: _fourier(WEEKDAY), True: _fourier(WEEKEND)}


def pattern(hour: float, weekend: bool) -> float:
    """Demand multiplier at a local hour (mean over the day = 1)."""
    a, b = _COEF[weekend]
    x = 2.0 * math.pi * hour / 24.0
    return 1.0 + sum(a[k] * math.cos((k + 1) * x) + b[k] * math.sin((k + 1) * x) for k in range(4))


def pattern_integral(hour: float, weekend: bool) -> float:
    """Integral of :func:`pattern` from local midnight to ``hour``, in hours."""
    a, b = _COEF[weekend]
    x = 2.0 * math.pi * hour / 24.0
    total = hour
    for k in range(4):
        w = 24.0 / (2.0 * math.pi * (k + 1))
        total += w * (a[k] * math.sin((k + 1) * x) - b[k] * (math.cos((k + 1) * x) - 1.0))
    return total


@dataclass(frozen=True)
class Leak:
    start: float
    flow: float  # m³/h

    def at(self, t: float) -> float:
        return self.flow if t >= self.start else 0.0

    def volume(self, t0: float, t: float) -> float:
        a = max(t0, self.start)
        return self.flow * max(0.0, t - a) / HOUR_S


@dataclass(frozen=True)
class Burst:
    start: float
    end: float  # main isolated
    flow: float  # m³/h at full bore
    ramp_s: float = 120.0

    def at(self, t: float) -> float:
        if t < self.start or t >= self.end:
            return 0.0
        return self.flow * min(1.0, (t - self.start) / self.ramp_s)

    def volume(self, t0: float, t: float) -> float:
        def cum(x: float) -> float:  # volume from start to x, m³
            if x <= self.start:
                return 0.0
            x = min(x, self.end)
            r = min(x - self.start, self.ramp_s)
            v = self.flow * r * r / (2.0 * self.ramp_s)
            v += self.flow * max(0.0, x - self.start - self.ramp_s)
            return v / HOUR_S

        return cum(t) - cum(t0)


@dataclass
class WaterBlockModel(DeviceModel):
    t0: float = 0.0
    mean_flow: float = 100.0  # m³/h
    p_static_bar: float = 5.5
    k_headloss: float = 1e-4  # bar per (m³/h)^1.852
    totaliser0: float = 0.0  # m³ at t0
    leaks: list[Leak] = field(default_factory=list)
    bursts: list[Burst] = field(default_factory=list)
    stuck: Window | None = None
    _day_cum: dict[int, float] = field(default_factory=dict, repr=False)

    def base_flow(self, t: float) -> float:
        we = is_weekend(t)
        return self.mean_flow * (WEEKEND_VOLUME if we else 1.0) * pattern(local_hour(t), we)

    def fault_flow(self, t: float) -> float:
        return sum(x.at(t) for x in self.leaks) + sum(b.at(t) for b in self.bursts)

    def true_flow(self, t: float) -> float:
        return self.base_flow(t) + self.fault_flow(t)

    def flow(self, t: float) -> float:
        jitter = 0.03 * noise.smooth(self.key, t, 900.0) + 0.015 * noise.normal(self.key, int(t))
        return max(0.0, self.base_flow(t) * (1.0 + jitter) + self.fault_flow(t))

    def pressure_bar(self, t: float) -> float:
        if self.stuck is not None and self.stuck.covers(t):
            t = self.stuck.start  # the register freezes at the value it had then
        q = self.true_flow(t)
        p = self.p_static_bar - self.k_headloss * q**HW_EXPONENT
        p += 0.03 * noise.smooth(self.key + 7, t, 1800.0) + 0.004 * noise.normal(
            self.key + 7, int(t)
        )
        return max(0.2, p)

    def _cum_to_midnight(self, day: int) -> float:
        """Deterministic volume from local midnight of day(t0) to local midnight of ``day``."""
        d0 = local_day(self.t0)
        if day <= d0:
            return 0.0
        if day not in self._day_cum:
            prev = self._cum_to_midnight(day - 1)
            we = (day - 1 + 3) % 7 >= 5
            self._day_cum[day] = prev + self.mean_flow * (WEEKEND_VOLUME if we else 1.0) * 24.0
        return self._day_cum[day]

    def _cum(self, t: float) -> float:
        we = is_weekend(t)
        part = (
            self.mean_flow * (WEEKEND_VOLUME if we else 1.0) * pattern_integral(local_hour(t), we)
        )
        return self._cum_to_midnight(local_day(t)) + part

    def totaliser(self, t: float) -> float:
        v = self._cum(t) - self._cum(self.t0)
        v += sum(x.volume(self.t0, t) for x in self.leaks)
        v += sum(b.volume(self.t0, t) for b in self.bursts)
        return self.totaliser0 + v

    def sample(self, t: float) -> dict[str, Any]:
        return {
            "flow": round(self.flow(t), 3),
            "pressure": round(self.pressure_bar(t) * 0.1, 4),
            "totaliser": float(int(self.totaliser(t))),
        }
