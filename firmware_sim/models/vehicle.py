"""GPS units on buses and snowplows (what an NMEA 0183 receiver reports).

Buses run a timetable on their route, out and back: cruise at the timetable speed
between stops every ~400 m, dwell 20 s at each stop, lay over 5 min at each terminal,
06:00-22:00 JST; outside service hours they stand at the outer terminal. Buses on one
route are spread evenly around the cycle (the headway). Position is closed-form in t.

Snowplows stand at their depot until the city's snow since the last clearance reaches
the dispatch depth (10 cm); then each sweeps its beat (a zig-zag over its road segments)
with the blade down at 15 km/h for the dispatch window, and returns.

GPS error: a slowly wandering bias (~3 m) plus white noise (~2.5 m); satellites 7-12;
HDOP 0.7-1.6. Short unlabelled no-fix gaps (10-40 s, under bridges and in the station
canyon) occur about once in four half-hours. Injected faults: ``dropouts`` (no fix for
minutes, label ``gps_dropout``) and ``detours`` (the bus leaves its route by ~600 m,
label ``off_route``).
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from firmware_sim import noise
from firmware_sim.geo import Polyline, to_latlon
from firmware_sim.models.base import DeviceModel, Window
from firmware_sim.timebase import local_hour

STOP_SPACING_M = 400.0
DWELL_S = 20.0
LAYOVER_S = 300.0
SERVICE_HOURS = (6.0, 22.0)
PLOW_SPEED_MS = 15.0 / 3.6
KNOT_KMH = 1.852


@dataclass(frozen=True)
class Motion:
    s: float  # arc length along the path
    speed_ms: float
    moving: bool


class Timetable:
    """Arc length along an out-and-back path as a piecewise-linear function of time."""

    def __init__(self, path: Polyline, cruise_ms: float) -> None:
        self.path = path
        half = path.length / 2.0
        # stops along the out leg and the back leg; terminals at 0, half, length
        n = max(1, round(half / STOP_SPACING_M))
        stops = [half * i / n for i in range(n + 1)] + [
            half + half * i / n for i in range(1, n + 1)
        ]
        self.times: list[float] = [0.0]
        self.s: list[float] = [0.0]
        t = 0.0
        for a, b in itertools.pairwise(stops):
            t += (b - a) / cruise_ms
            self.times.append(t)
            self.s.append(b)
            t += LAYOVER_S if math.isclose(b, half) or math.isclose(b, path.length) else DWELL_S
            self.times.append(t)
            self.s.append(b)
        self.period = t
        self.cruise = cruise_ms

    def at(self, tau: float) -> Motion:
        tau %= self.period
        i = min(bisect.bisect_right(self.times, tau) - 1, len(self.times) - 2)
        t1, t2 = self.times[i], self.times[i + 1]
        s1, s2 = self.s[i], self.s[i + 1]
        if s1 == s2:
            return Motion(s1, 0.0, False)
        f = (tau - t1) / (t2 - t1)
        return Motion(s1 + f * (s2 - s1), self.cruise, True)


@dataclass(frozen=True)
class Detour:
    window: Window
    offset_m: float = 600.0
    ramp_s: float = 90.0

    def offset(self, t: float) -> float:
        w = self.window
        if not w.covers(t) or w.end is None:
            return 0.0
        up = min(1.0, (t - w.start) / self.ramp_s)
        down = min(1.0, (w.end - t) / self.ramp_s)
        return self.offset_m * min(up, down)


@dataclass
class VehicleModel(DeviceModel):
    vehicle_type: str = "bus"
    route_id: str = ""
    path: Polyline | None = None
    phase_s: float = 0.0
    cruise_ms: float = 25.0 / 3.6
    dispatch: list[Window] = field(default_factory=list)  # snowplows only
    dropouts: list[Window] = field(default_factory=list)
    detours: list[Detour] = field(default_factory=list)
    _tt: Timetable | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        assert self.path is not None
        if self.vehicle_type == "bus":
            self._tt = Timetable(self.path, self.cruise_ms)

    def motion(self, t: float) -> Motion:
        assert self.path is not None
        if self._tt is not None:
            h = local_hour(t)
            if not SERVICE_HOURS[0] <= h < SERVICE_HOURS[1]:
                return Motion(self.path.length / 2.0, 0.0, False)
            return self._tt.at(t - self.phase_s)
        for w in self.dispatch:
            if w.covers(t):
                s = ((t - w.start) * PLOW_SPEED_MS) % self.path.length
                return Motion(s, PLOW_SPEED_MS, True)
        return Motion(0.0, 0.0, False)

    def plow_down(self, t: float) -> bool:
        return any(w.covers(t) for w in self.dispatch)

    def has_fix(self, t: float) -> bool:
        if any(w.covers(t) for w in self.dropouts):
            return False
        # short natural gaps: in some half-hours, 10-40 s without a fix
        slot = int(t // 1800)
        if noise.uniform(self.key + 3, slot) < 0.25:
            begin = slot * 1800 + noise.uniform(self.key + 4, slot) * 1700
            return not begin <= t < begin + 10 + 30 * noise.uniform(self.key + 5, slot)
        return True

    def true_position(self, t: float) -> tuple[float, float, float, float]:
        """``(lat, lon, speed_kmh, heading)`` without GPS error."""
        assert self.path is not None
        m = self.motion(t)
        x, y, heading, _ux, _uy = self.path.at(m.s)
        for d in self.detours:
            off = d.offset(t)
            if off:
                # a diversion: turn right off the route, drive a parallel road for up to
                # 1.2 km, then come back to where the timetable would have the bus
                bx, by, _, vx, vy = self.path.at(self.motion(d.window.start).s)
                along = min(1200.0, self.cruise_ms * max(0.0, t - d.window.start - d.ramp_s))
                dx = bx + vy * d.offset_m + vx * along
                dy = by - vx * d.offset_m + vy * along
                w = off / d.offset_m
                x, y = (1 - w) * x + w * dx, (1 - w) * y + w * dy
        lat, lon = to_latlon(x, y)
        return lat, lon, m.speed_ms * 3.6, heading

    def sample(self, t: float) -> dict[str, Any]:
        out: dict[str, Any] = {"vehicle_type": self.vehicle_type, "route_id": self.route_id}
        if self.vehicle_type == "snowplow":
            out["plow_down"] = self.plow_down(t)
        i = int(t)
        if not self.has_fix(t):
            sats = int(noise.uniform(self.key + 6, i) * 4)
            out.update(fix=False, fix_quality=0, satellites=sats)
            return out
        lat, lon, speed, heading = self.true_position(t)
        bias = 3.0
        ex = bias * noise.smooth(self.key + 8, t, 300.0) + 2.5 * noise.normal(self.key + 9, i)
        ey = bias * noise.smooth(self.key + 10, t, 300.0) + 2.5 * noise.normal(self.key + 11, i)
        lat += ey / 111_132.0
        lon += ex / (111_320.0 * math.cos(math.radians(lat)))
        if speed > 0:
            speed = max(0.0, speed + 0.8 * noise.normal(self.key + 12, i))
        sats = 7 + int(6 * (0.5 + 0.5 * noise.smooth(self.key + 13, t, 900.0)) - 1e-9)
        hdop = 0.7 + 0.9 * (0.5 - 0.5 * noise.smooth(self.key + 13, t, 900.0))
        out.update(
            lat=round(lat, 6),
            lon=round(lon, 6),
            speed=round(speed, 1),
            heading=round(heading, 1),
            fix=True,
            fix_quality=1,
            satellites=sats,
            hdop=round(hdop, 1),
        )
        return out
