"""Which trip each bus is running: progress along the shape, continuity and blocks.

A bus reports its route, position, time and course. :class:`TripMatcher` keeps, per
bus, the trip instance it was last matched to and how far along that trip's line it
was. On each fix:

1. **Off route.** The bus is measured to every line of its route (the ``shapes.txt``
   shapes, else the stop paths; the same geometry as the off-route detector). Farther
   than ``off_route_m`` (200 m) from all of them: no trip, flagged off route. Its
   trip stays reserved for it, so it resumes when the bus is back.
2. **Continuity.** A bus on its trip's line keeps its trip, however late (up to
   ``max_late_s``), until it reaches the last stop. Then it follows ``block_id`` to the
   next trip of its block on the same service day; without a block it is matched
   afresh. Going back along the line more than ``backtrack_m`` ends the match.
3. **Fresh match.** Every trip instance of the route running that day that is not held
   by another bus and that the bus could be on: within ``off_route_m`` of its line,
   heading the line's way (except standing at the trip's first stop, where a bus still
   points the way it arrived), not past its last stop, and with a delay (fix time minus
   the scheduled time at that point of the line) between ``-max_early_s`` and
   ``max_late_s``. The smallest delay wins (running early costs double: early running
   is rarer than late), one bus per instance, best pairs first.

Frequency-based trips with ``exact_times=0`` have no fixed instances: the instance
start is the fix time minus the scheduled time to the bus's point, set at the first
match and kept while the bus stays on the trip.

What position alone cannot tell: a bus first seen already later than about half a
headway looks exactly like the next bus running on time. Continuity is what keeps a
late bus on its own trip, so the matcher must see a bus from the start of its block
(or while it is still within half a headway of schedule).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol

from cloud.detect.vehicle import RouteShape
from cloud.opendata.gtfs_static import GtfsStatic, Trip, format_gtfs_time
from cloud.opendata.shapes import GeometryIndex, TripGeometry

log = logging.getLogger(__name__)

DEFAULT_OFF_ROUTE_M = 200.0


@dataclass(frozen=True)
class MatchConfig:
    off_route_m: float = DEFAULT_OFF_ROUTE_M
    max_late_s: float = 1800.0
    max_early_s: float = 600.0
    heading_tolerance: float = 90.0
    end_margin_m: float = 25.0  # this close to the last stop: the trip is done
    start_zone_m: float = 150.0  # at the first stop, heading says nothing
    backtrack_m: float = 300.0
    hold_s: float = 1800.0  # how long a silent or off-route bus keeps its trip
    lost_s: float = 300.0  # how long a bus back along its line keeps its trip

    def __post_init__(self) -> None:
        for name in ("off_route_m", "max_late_s", "hold_s"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"match setting {name}: {value!r} must be > 0")
        if self.max_early_s < 0:
            raise ValueError(f"match setting max_early_s: {self.max_early_s!r} must be >= 0")


@dataclass(frozen=True)
class TripMatch:
    trip_id: str
    route_id: str
    direction_id: int | None
    start_date: str  # YYYYMMDD
    start_time: str  # HH:MM:SS
    distance_m: float
    delay_s: float = 0.0
    along_m: float = 0.0
    frequency_based: bool = False  # exact_times=0: UNSCHEDULED in GTFS-Realtime


@dataclass(frozen=True)
class VehicleMatch:
    """What the matcher says about one fix."""

    vehicle_id: str
    match: TripMatch | None
    off_route: bool = False
    distance_m: float | None = None  # to the nearest line of the bus's route


@dataclass
class _Held:
    trip: Trip
    day: date
    start: int  # GTFS seconds of the instance's first departure
    along: float
    seen: datetime
    frequency_based: bool
    carried: float = 0.0  # delay brought from the block's previous trip
    lost_since: datetime | None = None  # seen back along its line since then

    @property
    def key(self) -> tuple[str, date, int]:
        return (self.trip.trip_id, self.day, self.start)


@dataclass(frozen=True)
class _Option:
    score: float
    vehicle_id: str
    held: _Held
    delay: float
    distance: float


@dataclass
class TripMatcher:
    """Per-bus trip matching over successive fixes; see the module docstring."""

    static: GtfsStatic
    config: MatchConfig = field(default_factory=MatchConfig)
    created: datetime | None = None

    def __post_init__(self) -> None:
        # two API requests may refresh the feed at once: one update at a time
        self._lock = threading.RLock()
        self.geo = GeometryIndex(self.static)
        self._held: dict[str, _Held] = {}
        self._last: dict[str, tuple[datetime, VehicleMatch]] = {}
        self._finished: set[tuple[str, date, int]] = set()
        self.served: set[tuple[str, date, int]] = set()
        self._route_shapes: dict[str, list[RouteShape]] = {}
        self._blocks: dict[str, list[Trip]] = {}
        for trips in self.static.trips_by_route.values():
            for t in trips:
                if t.block_id:
                    self._blocks.setdefault(t.block_id, []).append(t)
        for block in self._blocks.values():
            block.sort(key=lambda t: t.stop_times[0].departure)

    # -- public ----------------------------------------------------------------------

    def update(self, fixes: Sequence[_Fix]) -> dict[str, VehicleMatch]:
        """Match each fix (one per vehicle); a fix seen before gives the same answer."""
        with self._lock:
            return self._update(fixes)

    def _update(self, fixes: Sequence[_Fix]) -> dict[str, VehicleMatch]:
        out: dict[str, VehicleMatch] = {}
        fresh: list[tuple[_Fix, float]] = []
        for f in fixes:
            last = self._last.get(f.vehicle_id)
            if last is not None and last[0] == f.ts:
                out[f.vehicle_id] = last[1]
                continue
            result, dist = self._continue(f)
            if result is None:
                fresh.append((f, dist))
            else:
                out[f.vehicle_id] = result
        out.update(self._fresh(fresh))
        for f in fixes:
            self._last[f.vehicle_id] = (f.ts, out[f.vehicle_id])
            m = out[f.vehicle_id].match
            if m is not None:
                self.served.add(self._held[f.vehicle_id].key)
        return out

    def prepare(self) -> None:
        """Place every trip's stops on its line now, not during the first refreshes."""
        for trips in self.static.trips_by_route.values():
            for t in trips:
                self.geo.trip(t)

    def geometry(self, trip: Trip) -> TripGeometry:
        return self.geo.trip(trip)

    def held_trip(self, vehicle_id: str) -> Trip | None:
        h = self._held.get(vehicle_id)
        return None if h is None else h.trip

    # -- steps -----------------------------------------------------------------------

    def _route_distance(self, route_id: str, lat: float, lon: float) -> float:
        shapes = self._route_shapes.get(route_id)
        if shapes is None:
            seen: dict[int, RouteShape] = {}
            for t in self.static.trips_by_route.get(route_id, []):
                s = self.geo.shape(t)
                seen[id(s)] = s
            shapes = self._route_shapes[route_id] = list(seen.values())
        return min((s.project(lat, lon)[0] for s in shapes), default=float("inf"))

    def _continue(self, f: _Fix) -> tuple[VehicleMatch | None, float]:
        """The answer when the bus is off route or keeps (or follows) its trip; None
        with the route distance when it needs a fresh match."""
        cfg = self.config
        if not f.route_id or f.route_id not in self.static.routes:
            self._held.pop(f.vehicle_id, None)
            return VehicleMatch(f.vehicle_id, None), float("inf")
        dist = self._route_distance(f.route_id, f.lat, f.lon)
        held = self._held.get(f.vehicle_id)
        if held is not None and (
            held.trip.route_id != f.route_id or (f.ts - held.seen).total_seconds() > cfg.hold_s
        ):
            self._held.pop(f.vehicle_id)
            held = None
        if dist > cfg.off_route_m:
            log.info(
                "bus_off_route vehicle=%s route=%s distance_m=%.0f", f.vehicle_id, f.route_id, dist
            )
            return VehicleMatch(f.vehicle_id, None, True, round(dist, 1)), dist
        if held is None:
            return None, dist
        geo = self.geo.trip(held.trip)
        d, along, _ = geo.shape.project(f.lat, f.lon)
        if max(along, held.along) >= geo.end_along - cfg.end_margin_m:
            # at the last stop the bus is already on its block's next trip (its layover)
            last_delay = self._delay(held, geo, along, f.ts)
            nxt = self._successor(held, last_delay)
            if nxt is None and held.along >= geo.end_along - cfg.end_margin_m:
                self._finished.add(held.key)
                self._held.pop(f.vehicle_id)
                return None, dist
            if nxt is not None:
                held = self._held[f.vehicle_id] = nxt
                geo = self.geo.trip(held.trip)
                d, along, _ = geo.shape.project(f.lat, f.lon)
        delay = self._delay(held, geo, along, f.ts)
        if d <= cfg.off_route_m and along < held.along - cfg.backtrack_m:
            # back along its own line: a detour passing near another part of the route
            # (or a bus really starting over); no trip for now, the trip kept a while
            held.lost_since = held.lost_since or f.ts
            if (f.ts - held.lost_since).total_seconds() <= cfg.lost_s:
                return VehicleMatch(f.vehicle_id, None, False, round(dist, 1)), dist
        if d > cfg.off_route_m or along < held.along - cfg.backtrack_m or delay > cfg.max_late_s:
            self._held.pop(f.vehicle_id)
            return None, dist
        held.lost_since = None
        if along < geo.stop_along[0] + cfg.start_zone_m:
            # waiting to leave: it leaves no earlier than the late arrival allows
            delay = max(delay, held.carried)
        held.along = max(held.along, along)
        held.seen = f.ts
        return VehicleMatch(f.vehicle_id, self._match(held, d, delay), False, round(dist, 1)), dist

    def _successor(self, held: _Held, delay: float) -> _Held | None:
        block = self._blocks.get(held.trip.block_id or "")
        if not block or held.frequency_based:
            return None
        end = held.trip.stop_times[-1].arrival
        for t in block:
            if t.stop_times[0].departure >= end - 60 and t.trip_id != held.trip.trip_id:
                svc = self.static.services.get(t.service_id)
                if svc is not None and svc.runs_on(held.day):
                    dep = t.stop_times[0].departure
                    # the delay is carried through the layover: a bus that makes up time
                    # at the terminal shows it as soon as it leaves
                    carried = max(0.0, delay - (dep - end))
                    return _Held(t, held.day, dep, 0.0, held.seen, False, carried)
        return None

    def _fresh(self, fixes: list[tuple[_Fix, float]]) -> dict[str, VehicleMatch]:
        taken = {h.key for h in self._held.values()} | self._finished
        options: list[_Option] = []
        for f, _ in fixes:
            options += self._options(f, taken)
        options.sort(key=lambda o: (o.score, o.vehicle_id, o.held.trip.trip_id, o.held.start))
        out: dict[str, VehicleMatch] = {}
        used: set[tuple[str, date, int]] = set()
        for o in options:
            if o.vehicle_id in out or o.held.key in used:
                continue
            used.add(o.held.key)
            self._held[o.vehicle_id] = o.held
            out[o.vehicle_id] = VehicleMatch(
                o.vehicle_id, self._match(o.held, o.distance, o.delay), False, None
            )
        for f, dist in fixes:
            if f.vehicle_id not in out:
                out[f.vehicle_id] = VehicleMatch(f.vehicle_id, None, False, round(dist, 1))
            elif out[f.vehicle_id].distance_m is None:
                m = out[f.vehicle_id]
                out[f.vehicle_id] = VehicleMatch(m.vehicle_id, m.match, False, round(dist, 1))
        return out

    def _options(self, f: _Fix, taken: set[tuple[str, date, int]]) -> list[_Option]:
        cfg = self.config
        assert f.route_id is not None
        local = f.ts.astimezone(self.static.timezone)
        out: list[_Option] = []
        proj: dict[int, tuple[float, float, int]] = {}
        days = [local.date() - timedelta(days=back) for back in (0, 1)]
        day_secs = [_gtfs_seconds(f.ts, day, self.static) for day in days]
        for trip in self.static.trips_by_route.get(f.route_id, []):
            if trip.trip_id not in self.static.frequencies and not any(
                trip.stop_times[0].departure - cfg.max_early_s
                <= secs
                <= trip.stop_times[-1].arrival + cfg.max_late_s
                for secs in day_secs
            ):
                continue  # not running at this time of day, however late or early
            geo = self.geo.trip(trip)
            key = id(geo.shape)
            if key not in proj:
                proj[key] = geo.shape.project(f.lat, f.lon)
            d, along, seg = proj[key]
            if d > cfg.off_route_m or along >= geo.end_along - cfg.end_margin_m:
                continue
            if (
                f.heading is not None
                and along > geo.stop_along[0] + cfg.start_zone_m
                and _angle_diff(geo.shape.bearing(seg), f.heading) > cfg.heading_tolerance
            ):
                continue
            offset = geo.offset_at(along)
            # a trip after midnight belongs to the previous service day
            for day, secs in zip(days, day_secs, strict=True):
                if not self.static.services[trip.service_id].runs_on(day):
                    continue
                for start, freq in self._instances(trip, secs - offset):
                    h = _Held(trip, day, start, along, f.ts, freq)
                    if h.key in taken:
                        continue
                    delay = 0.0 if freq else secs - start - offset
                    if not -cfg.max_early_s <= delay <= cfg.max_late_s:
                        continue
                    score = delay if delay >= 0 else -2.0 * delay
                    out.append(_Option(score + d / 100.0, f.vehicle_id, h, delay, d))
        return out

    def _instances(self, trip: Trip, start_now: float) -> list[tuple[int, bool]]:
        """Instance starts (and whether frequency-based) near ``start_now``, the start a
        bus on time at this point would have had."""
        cfg = self.config
        freqs = self.static.frequencies.get(trip.trip_id)
        if not freqs:
            return [(trip.stop_times[0].departure, False)]
        out: list[tuple[int, bool]] = []
        for fq in freqs:
            if not fq.exact_times:
                if fq.start - fq.headway_s <= start_now < fq.end:
                    out.append((round(start_now), True))
                continue
            lo, hi = start_now - cfg.max_late_s, start_now + cfg.max_early_s
            k = max(0, int((lo - fq.start) // fq.headway_s))
            while (s := fq.start + k * fq.headway_s) <= hi and s < fq.end:
                if s >= lo:
                    out.append((s, False))
                k += 1
        return out

    def _delay(self, held: _Held, geo: TripGeometry, along: float, ts: datetime) -> float:
        if held.frequency_based:
            return 0.0
        secs = _gtfs_seconds(ts, held.day, self.static)
        return secs - held.start - geo.offset_at(along)

    def _match(self, held: _Held, distance: float, delay: float) -> TripMatch:
        return TripMatch(
            trip_id=held.trip.trip_id,
            route_id=held.trip.route_id,
            direction_id=held.trip.direction_id,
            start_date=held.day.strftime("%Y%m%d"),
            start_time=format_gtfs_time(held.start),
            distance_m=round(distance, 1),
            delay_s=round(delay, 1),
            along_m=held.along,
            frequency_based=held.frequency_based,
        )

    def unserved(self, at: datetime, after_s: float) -> list[tuple[Trip, date, int]]:
        """Timetabled instances that departed more than ``after_s`` ago, are not over,
        were never matched to a bus and whose block has no bus on the road, since the
        matcher was created plus ``after_s`` (before that it cannot know)."""
        with self._lock:
            return self._unserved(at, after_s)

    def _unserved(self, at: datetime, after_s: float) -> list[tuple[Trip, date, int]]:
        out = []
        local = at.astimezone(self.static.timezone)
        since = self.created or at
        # a block whose bus is on the road (late on an earlier trip) will still be run
        running = {
            (h.trip.block_id, h.day)
            for h in self._held.values()
            if h.trip.block_id and (at - h.seen).total_seconds() <= self.config.hold_s
        }
        for trips in self.static.trips_by_route.values():
            for trip in trips:
                if trip.trip_id in self.static.frequencies:
                    continue
                for back in (0, 1):
                    day = local.date() - timedelta(days=back)
                    if not self.static.services[trip.service_id].runs_on(day):
                        continue
                    secs = _gtfs_seconds(at, day, self.static)
                    start = trip.stop_times[0].departure
                    began = secs - start
                    if not after_s <= began <= trip.span + self.config.max_late_s:
                        continue
                    if (at - since).total_seconds() < began:
                        continue  # departed before the matcher could see it
                    if (trip.block_id, day) in running:
                        continue
                    if (trip.trip_id, day, start) not in self.served:
                        out.append((trip, day, start))
        return out


def _gtfs_seconds(ts: datetime, day: date, static: GtfsStatic) -> int:
    # GTFS times count from noon minus 12 h (midnight except on DST change days)
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=static.timezone)
    return int((ts - noon).total_seconds()) + 12 * 3600


def _angle_diff(x: float, y: float) -> float:
    return abs((x - y + 180.0) % 360.0 - 180.0)


class _Fix(Protocol):
    """What the matcher reads of a fix (``gtfs_rt.VehicleFix`` has it)."""

    @property
    def vehicle_id(self) -> str: ...
    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def heading(self) -> float | None: ...
    @property
    def route_id(self) -> str | None: ...
