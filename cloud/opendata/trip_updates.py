"""GTFS-Realtime TripUpdates: predicted arrival and departure at the remaining stops.

For each bus matched to a trip (:mod:`cloud.opendata.matching`), the delay observed
at its point of the line is carried to every stop still ahead, decaying with the
scheduled time to that stop (``exp(-t / decay_s)``: a late bus makes up some time over
a long trip, little over the next few stops). Predictions never lie before the fix
and never go back in time from one stop to the next. Frequency-based trips
(``exact_times=0``) have no schedule to be late against: their predictions are the
instance's start plus the scheduled running times, stop updates ``UNSCHEDULED``.

Optionally (``canceled_after_s``, off by default) a timetabled trip instance no bus
was matched to that long after its departure is published ``CANCELED``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from google.transit import gtfs_realtime_pb2 as rt

from cloud.opendata.gtfs_rt import VehicleFix, new_feed, set_trip
from cloud.opendata.gtfs_static import format_gtfs_time
from cloud.opendata.matching import TripMatcher, VehicleMatch


@dataclass(frozen=True)
class TripUpdateConfig:
    decay_s: float = 3600.0
    canceled_after_s: float | None = None  # e.g. 900: CANCELED 15 min after departure

    def __post_init__(self) -> None:
        if not self.decay_s > 0:
            raise ValueError(f"trip update setting decay_s: {self.decay_s!r} must be > 0")
        if self.canceled_after_s is not None and not self.canceled_after_s > 0:
            raise ValueError(
                f"trip update setting canceled_after_s: {self.canceled_after_s!r} must be > 0"
            )


@dataclass(frozen=True)
class StopPrediction:
    stop_sequence: int
    stop_id: str
    arrival: int  # epoch seconds
    departure: int


def service_day_start(day: date, matcher: TripMatcher) -> datetime:
    """The instant GTFS time 00:00:00 of ``day`` refers to (noon minus 12 h)."""
    tz = matcher.static.timezone
    return datetime(day.year, day.month, day.day, 12, tzinfo=tz) - timedelta(hours=12)


def predict(
    vm: VehicleMatch, fix: VehicleFix, matcher: TripMatcher, cfg: TripUpdateConfig
) -> list[StopPrediction]:
    """Predicted times at the stops still ahead of the bus on its matched trip."""
    m = vm.match
    trip = matcher.held_trip(vm.vehicle_id)
    if m is None or trip is None or trip.trip_id != m.trip_id:
        return []
    geo = matcher.geometry(trip)
    day = datetime.strptime(m.start_date, "%Y%m%d").date()
    start = service_day_start(day, matcher).timestamp() + _secs(m.start_time)
    here = geo.offset_at(m.along_m)
    floor = fix.ts.timestamp()
    out: list[StopPrediction] = []
    for i in range(geo.next_stop(m.along_m), len(trip.stop_times)):
        st = trip.stop_times[i]
        ahead = max(0.0, geo.arr[i] - here)
        delay = m.delay_s * math.exp(-ahead / cfg.decay_s)
        arrival = max(floor, start + geo.arr[i] + delay)
        departure = max(arrival, start + geo.dep[i] + delay)
        out.append(StopPrediction(st.stop_sequence, st.stop_id, round(arrival), round(departure)))
        floor = departure
    return out


def build_trip_updates(
    fixes: Sequence[VehicleFix],
    matches: Mapping[str, VehicleMatch],
    matcher: TripMatcher | None,
    *,
    now: datetime,
    config: TripUpdateConfig | None = None,
) -> rt.FeedMessage:
    """A FULL_DATASET TripUpdates feed from this refresh's matches."""
    cfg = config or TripUpdateConfig()
    feed = new_feed(now)
    if matcher is None:
        return feed
    for f in sorted(fixes, key=lambda x: x.vehicle_id):
        vm = matches.get(f.vehicle_id)
        if vm is None or vm.match is None:
            continue
        stops = predict(vm, f, matcher, cfg)
        if not stops:
            continue  # at its last stop: nothing left to predict
        entity = feed.entity.add()
        entity.id = f"tu-{f.vehicle_id}"
        tu = entity.trip_update
        set_trip(tu.trip, vm.match)
        tu.vehicle.id = f.vehicle_id
        tu.vehicle.label = f.label or f.vehicle_id
        tu.timestamp = int(f.ts.timestamp())
        if not vm.match.frequency_based:
            tu.delay = round(vm.match.delay_s)
        for p in stops:
            su = tu.stop_time_update.add()
            su.stop_sequence = p.stop_sequence
            su.stop_id = p.stop_id
            su.arrival.time = p.arrival
            su.departure.time = p.departure
            su.schedule_relationship = (
                rt.TripUpdate.StopTimeUpdate.UNSCHEDULED
                if vm.match.frequency_based
                else rt.TripUpdate.StopTimeUpdate.SCHEDULED
            )
    if cfg.canceled_after_s is not None:
        for trip, day, start in matcher.unserved(now, cfg.canceled_after_s):
            entity = feed.entity.add()
            entity.id = f"canceled-{trip.trip_id}-{day:%Y%m%d}"
            d = entity.trip_update.trip
            d.trip_id = trip.trip_id
            d.route_id = trip.route_id
            if trip.direction_id is not None:
                d.direction_id = trip.direction_id
            d.start_date = f"{day:%Y%m%d}"
            d.start_time = format_gtfs_time(start)
            d.schedule_relationship = rt.TripDescriptor.CANCELED
            entity.trip_update.timestamp = int(now.timestamp())
    return feed


def _secs(hms: str) -> int:
    h, m, s = (int(x) for x in hms.split(":"))
    return h * 3600 + m * 60 + s
