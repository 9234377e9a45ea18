"""Buses running the corridor feed's blocks, late, noisy and sometimes off route.

Each bus runs one block of :mod:`tests.cloud.opendata.corridor_feed` from its first
departure: it leaves on time, falls behind steadily over its first trip until it is
``delay`` late (drawn from 0-20 min), and stays that late for the rest of the block
(in winter a lost quarter of an hour is not made up at layovers). A few buses leave
the route: during their second trip they turn off for 8 minutes onto a road 500 m to
the side. Fixes every 15 s with Gaussian noise (10 m per axis), course over ground
from the line (5° noise), kept while standing.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cloud.opendata.gtfs_rt import VehicleFix
from tests.cloud.opendata.corridor_feed import TrueTrip, offset, true_trips

__all__ = ["true_trips"]

TZ = ZoneInfo("Asia/Tokyo")
DAY = datetime(2026, 6, 2, tzinfo=TZ)  # a Tuesday inside the calendar


@dataclass(frozen=True)
class Truth:
    trip_id: str | None  # None while the bus is off route
    off_route_m: float  # how far the bus really is from its route's line
    first_minute: bool
    steady: bool  # past its first trip: the delay no longer changes
    next_stop_seq: int | None
    next_stop_at: float | None  # epoch seconds the bus really reaches it


@dataclass
class SimBus:
    vehicle_id: str
    trips: list[TrueTrip]
    delay_s: float
    detour: tuple[float, float] | None  # schedule seconds of the detour

    @property
    def start(self) -> int:
        return self.trips[0].dep[0]

    @property
    def ramp_end(self) -> int:
        return self.trips[0].arr[-1]

    def sched(self, t: float) -> float:
        """Schedule time the bus is at, at GTFS time ``t`` (its delay grows, then holds)."""
        s0, s1, d = self.start, self.ramp_end, self.delay_s
        if t <= s0:
            return t
        if t >= s1 + d:
            return t - d
        return (t + d * s0 / (s1 - s0)) / (1 + d / (s1 - s0))

    def real(self, s: float) -> float:
        """GTFS time the bus reaches schedule time ``s``."""
        f = min(1.0, max(0.0, (s - self.start) / (self.ramp_end - self.start)))
        return s + self.delay_s * f


def _where(trip: TrueTrip, s: float) -> tuple[float, int]:
    """Distance along the trip's line at schedule time ``s``, and the next stop index."""
    for k in range(len(trip.arr) - 1):
        if s <= trip.dep[k]:
            return trip.stop_along[k], k + 1 if s >= trip.arr[k] else k
        if s < trip.arr[k + 1]:
            f = (s - trip.dep[k]) / (trip.arr[k + 1] - trip.dep[k])
            a0, a1 = trip.stop_along[k], trip.stop_along[k + 1]
            return a0 + f * (a1 - a0), k + 1
    return trip.stop_along[-1], len(trip.arr)


def _point(trip: TrueTrip, along: float) -> tuple[float, float, float]:
    i = max(0, min(len(trip.shape_along) - 2, bisect.bisect_right(trip.shape_along, along) - 1))
    a0, a1 = trip.shape_along[i], trip.shape_along[i + 1]
    f = (along - a0) / (a1 - a0) if a1 > a0 else 0.0
    p, q = trip.shape[i], trip.shape[i + 1]
    lat, lon = p[0] + f * (q[0] - p[0]), p[1] + f * (q[1] - p[1])
    kx = math.cos(math.radians(p[0]))
    bearing = math.degrees(math.atan2((q[1] - p[1]) * kx, q[0] - p[0])) % 360.0
    return lat, lon, bearing


def line_distance_m(line: list[tuple[float, float]], lat: float, lon: float) -> float:
    """Metres from a point to a polyline (local flat projection), computed here apart
    from the code under test."""
    kx = 111_320.0 * math.cos(math.radians(lat))
    best = math.inf
    for (alat, alon), (blat, blon) in itertools.pairwise(line):
        ax, ay = (alon - lon) * kx, (alat - lat) * 111_320.0
        bx, by = (blon - lon) * kx, (blat - lat) * 111_320.0
        dx, dy = bx - ax, by - ay
        seg = dx * dx + dy * dy
        u = 0.0 if seg == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / seg))
        best = min(best, math.hypot(ax + u * dx, ay + u * dy))
    return best


def make_buses(
    n: int, seed: int, detour_share: float = 0.05, trips: list[TrueTrip] | None = None
) -> list[SimBus]:
    rng = random.Random(seed)
    blocks: dict[str, list[TrueTrip]] = {}
    for t in trips if trips is not None else true_trips():
        blocks.setdefault(t.block_id, []).append(t)
    chosen = sorted(blocks.values(), key=lambda b: (b[0].dep[0], b[0].block_id))[:n]
    n_detour = math.ceil(n * detour_share)
    detouring = set(rng.sample(range(len(chosen)), n_detour))
    buses = []
    for i, block in enumerate(chosen):
        block.sort(key=lambda t: t.dep[0])
        detour = None
        if i in detouring and len(block) > 1:
            s = block[1].dep[0] + 300
            detour = (s, s + 480)
        buses.append(SimBus(f"bus-{i:03d}", block, rng.uniform(0, 1200), detour))
    return buses


def run(
    buses: list[SimBus], *, hours: float, step_s: int = 15, seed: int = 1, noise_m: float = 10.0
) -> Iterator[tuple[datetime, list[VehicleFix], dict[str, Truth]]]:
    rng = random.Random(seed)
    t0 = min(b.start for b in buses)
    heading: dict[str, float] = {}
    for step in range(int(hours * 3600 // step_s)):
        t = t0 + step * step_s
        ts = DAY + timedelta(seconds=t)
        fixes, truth = [], {}
        for b in buses:
            if t < b.start:
                continue
            s = b.sched(t)
            trip = next((x for x in b.trips if s <= x.arr[-1]), None)
            if trip is None:
                continue  # block over: the bus goes back to the depot, silent
            along, k = _where(trip, max(s, trip.dep[0]))
            lat, lon, bearing = _point(trip, along)
            moving = trip.dep[0] < s < trip.arr[-1] and not any(
                trip.arr[j] <= s <= trip.dep[j] for j in range(len(trip.arr))
            )
            if moving:
                heading[b.vehicle_id] = bearing
            off = 0.0
            if b.detour is not None and b.detour[0] <= s <= b.detour[1]:
                # 60 s to turn off, 60 s to come back: a side road 500 m long
                off = 500.0 * min(1.0, (s - b.detour[0]) / 60, (b.detour[1] - s) / 60)
                lat, lon = offset((lat, lon), bearing - 90.0, off)
                # the side road may come near another part of the route (the corridor
                # from a branch): what counts is the distance to the route's line
                off = line_distance_m(trip.shape, lat, lon)
            lat, lon = offset((lat, lon), 0.0, rng.gauss(0, noise_m))
            lat, lon = offset((lat, lon), 90.0, rng.gauss(0, noise_m))
            hd = heading.get(b.vehicle_id, bearing)
            fixes.append(
                VehicleFix(
                    b.vehicle_id,
                    lat,
                    lon,
                    ts,
                    speed_kmh=22.0 if moving else 0.0,
                    heading=(hd + rng.gauss(0, 5.0)) % 360.0,
                    route_id=trip.route_id,
                )
            )
            nxt = k if k < len(trip.arr) else None
            truth[b.vehicle_id] = Truth(
                trip_id=trip.trip_id,
                off_route_m=off,
                first_minute=t - b.start < 60,
                steady=s >= b.ramp_end,
                next_stop_seq=None if nxt is None else nxt + 1,
                next_stop_at=None
                if nxt is None
                else (DAY + timedelta(seconds=b.real(trip.arr[nxt]))).timestamp(),
            )
        yield ts, fixes, truth
