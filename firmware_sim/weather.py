"""City weather shared by every model: rain, snowfall, outdoor temperature and humidity.

Everything is closed-form in ``t`` (sums of smooth pulses and sinusoids), so any model can
ask for the weather at any instant at no cost. Storms and snowfalls are events placed by
the scenario; a site's rain is the city rain times a per-site factor (cells are uneven).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from firmware_sim import noise
from firmware_sim.timebase import HOUR_S, local_hour

# Akita (AMeDAS 秋田) monthly normals, rounded: mean air temperature °C, mean RH %.
MONTHLY_MEAN_C = [0.4, 0.9, 4.0, 9.6, 15.2, 19.6, 23.4, 25.0, 21.0, 14.6, 8.3, 2.8]
MONTHLY_DEW_C = [-3.0, -3.0, -1.0, 3.0, 9.0, 15.0, 20.0, 21.0, 16.0, 9.0, 3.0, -1.0]
DIURNAL_AMP_C = 3.5


@dataclass(frozen=True)
class Pulse:
    """A sin² pulse: 0 at ``start``, ``peak`` in the middle, 0 at ``start + duration``."""

    start: float
    duration: float
    peak: float

    def at(self, t: float) -> float:
        x = (t - self.start) / self.duration
        if x <= 0.0 or x >= 1.0:
            return 0.0
        s = math.sin(math.pi * x)
        return self.peak * s * s

    def integral(self, t: float) -> float:
        """Integral from the start to ``t`` of the pulse, in peak-units x hours."""
        x = min(max((t - self.start) / self.duration, 0.0), 1.0)
        hours = self.duration / HOUR_S
        return self.peak * hours * (x / 2.0 - math.sin(2.0 * math.pi * x) / (4.0 * math.pi))


@dataclass(frozen=True)
class HeatWave:
    """Extra outdoor warmth: ramps up over a day, holds, ramps down over a day."""

    start: float
    duration: float
    extra_c: float

    def at(self, t: float) -> float:
        ramp = 86_400.0
        if t <= self.start or t >= self.start + self.duration:
            return 0.0
        up = min(1.0, (t - self.start) / ramp)
        down = min(1.0, (self.start + self.duration - t) / ramp)
        w = min(up, down)
        return self.extra_c * (1.0 - math.cos(math.pi * w)) / 2.0


@dataclass
class Weather:
    month: int
    key: int
    storms: list[Pulse] = field(default_factory=list)  # mm/h
    snowfalls: list[Pulse] = field(default_factory=list)  # cm/h
    heat_waves: list[HeatWave] = field(default_factory=list)

    _cache: dict[tuple[int, float], float] = field(default_factory=dict, repr=False)

    def _memo(self, slot: int, t: float, fn: Callable[[float], float]) -> float:
        # Thousands of devices ask for the same city weather at the same instants.
        key = (slot, t)
        v = self._cache.get(key)
        if v is None:
            if len(self._cache) > 500_000:
                self._cache.clear()
            v = self._cache[key] = fn(t)
        return v

    def city_rain(self, t: float) -> float:
        return self._memo(0, t, self._city_rain)

    def _city_rain(self, t: float) -> float:
        r = 0.0
        for s in self.storms:
            if s.start < t < s.start + s.duration:
                r += s.at(t)
        if r <= 0.0:
            return 0.0
        # convective cells make the intensity ragged on a ~10 min scale
        return r * (1.0 + 0.15 * noise.smooth(self.key, t, 600.0))

    def dry_until(self, t: float) -> float:
        """When the next storm begins, if no storm is on at ``t`` (else ``t``)."""
        nxt = math.inf
        for s in self.storms:
            if s.start <= t < s.start + s.duration:
                return t
            if s.start > t:
                nxt = min(nxt, s.start)
        return nxt

    def rain(self, t: float, site_factor: float = 1.0) -> float:
        """Rain intensity, mm/h, at a site (city rain times the site's factor)."""
        r = self.city_rain(t)
        return r * site_factor if r > 0.0 else 0.0

    def snow_rate(self, t: float) -> float:
        """Snowfall, cm/h."""
        return sum(s.at(t) for s in self.snowfalls)

    def snow_total(self, t: float) -> float:
        """Snow fallen since the scenario began, cm."""
        return sum(s.integral(t) for s in self.snowfalls)

    def temp_out(self, t: float) -> float:
        return self._memo(1, t, self._temp_out)

    def _temp_out(self, t: float) -> float:
        mean = MONTHLY_MEAN_C[self.month - 1]
        h = local_hour(t)
        diurnal = DIURNAL_AMP_C * math.cos(2.0 * math.pi * (h - 14.0) / 24.0)
        heat = sum(w.at(t) for w in self.heat_waves)
        cooling = -2.0 if self.rain(t) > 1.0 else 0.0
        return mean + diurnal + heat + cooling + 1.2 * noise.smooth(self.key + 1, t, 6 * HOUR_S)

    def dew_point(self, t: float) -> float:
        """Outdoor dew point, °C: the air mass's moisture changes slowly over the day."""
        heat = sum(w.at(t) for w in self.heat_waves)
        return (
            MONTHLY_DEW_C[self.month - 1]
            + 0.25 * heat
            + 1.5 * noise.smooth(self.key + 2, t, 8 * HOUR_S)
        )

    def rh_out(self, t: float) -> float:
        return self._memo(2, t, self._rh_out)

    def _rh_out(self, t: float) -> float:
        if self.rain(t) > 1.0 or self.snow_rate(t) > 0.2:
            return 95.0
        temp = self.temp_out(t)
        rh = 100.0 * saturation_hpa(min(self.dew_point(t), temp)) / saturation_hpa(temp)
        return min(99.0, max(20.0, rh))


def vapour_pressure_hpa(temp_c: float, rh_pct: float) -> float:
    """Water-vapour partial pressure (Tetens), hPa."""
    return rh_pct / 100.0 * saturation_hpa(temp_c)


def saturation_hpa(temp_c: float) -> float:
    return 6.1078 * 10.0 ** (7.5 * temp_c / (temp_c + 237.3))
