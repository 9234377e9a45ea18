"""GTFS-Realtime VehiclePositions, built as a pure function over bus positions.

Each bus becomes one ``FeedEntity`` (id = device id) with its position (WGS84, bearing
in degrees, speed in m/s), the time of the fix, and a ``TripDescriptor``:

- with a static feed: the trip instance of the bus's route that the timetable puts
  nearest the bus at that time (``trip_id``, ``route_id``, ``direction_id``,
  ``start_date``, ``start_time``), each instance given to one bus at most; when no
  instance is within ``max_distance_m`` only ``route_id`` is set; a route the static
  feed does not know gets no trip at all (a consumer could not resolve it);
- without a static feed: ``route_id`` as the bus reports it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.protobuf import json_format
from google.transit import gtfs_realtime_pb2 as rt

from cloud.opendata.gtfs_static import Candidate, GtfsStatic, format_gtfs_time

log = logging.getLogger(__name__)

GTFS_RT_VERSION = "2.0"
MAX_DISTANCE_M = 1500.0


@dataclass(frozen=True)
class VehicleFix:
    """The latest fix of one vehicle, as the store holds it."""

    vehicle_id: str
    lat: float
    lon: float
    ts: datetime
    speed_kmh: float | None = None
    heading: float | None = None
    route_id: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class TripMatch:
    trip_id: str
    route_id: str
    direction_id: int | None
    start_date: str  # YYYYMMDD
    start_time: str  # HH:MM:SS
    distance_m: float


def match_trips(
    fixes: Sequence[VehicleFix], static: GtfsStatic, *, max_distance_m: float = MAX_DISTANCE_M
) -> dict[str, TripMatch]:
    """Vehicle id -> its trip instance; nearest pairs first, one vehicle per instance."""
    pairs: list[tuple[float, str, Candidate]] = []
    for f in fixes:
        if not f.route_id or f.route_id not in static.routes:
            continue
        # a receiver keeps its last course over ground while standing, so heading also
        # tells the direction of a bus at a stop
        for c in static.candidates(f.route_id, f.ts, lat=f.lat, lon=f.lon, heading=f.heading):
            d = c.distance_m(f.lat, f.lon)
            if d <= max_distance_m:
                pairs.append((d, f.vehicle_id, c))
    pairs.sort(key=lambda p: (p[0], p[1], p[2].trip.trip_id, p[2].start_time))
    out: dict[str, TripMatch] = {}
    taken: set[tuple[str, str, int]] = set()
    for d, vid, c in pairs:
        key = (c.trip.trip_id, c.start_date.isoformat(), c.start_time)
        if vid in out or key in taken:
            continue
        taken.add(key)
        out[vid] = TripMatch(
            trip_id=c.trip.trip_id,
            route_id=c.trip.route_id,
            direction_id=c.trip.direction_id,
            start_date=c.start_date.strftime("%Y%m%d"),
            start_time=format_gtfs_time(c.start_time),
            distance_m=round(d, 1),
        )
    return out


def build_vehicle_positions(
    fixes: Sequence[VehicleFix],
    *,
    now: datetime,
    static: GtfsStatic | None = None,
    max_distance_m: float = MAX_DISTANCE_M,
) -> rt.FeedMessage:
    """A FULL_DATASET VehiclePositions feed for ``fixes`` at ``now``."""
    feed = rt.FeedMessage()
    feed.header.gtfs_realtime_version = GTFS_RT_VERSION
    feed.header.incrementality = rt.FeedHeader.FULL_DATASET
    feed.header.timestamp = int(now.timestamp())
    matches: Mapping[str, TripMatch] = (
        match_trips(fixes, static, max_distance_m=max_distance_m) if static else {}
    )
    for f in sorted(fixes, key=lambda x: x.vehicle_id):
        entity = feed.entity.add()
        entity.id = f.vehicle_id
        vp = entity.vehicle
        vp.vehicle.id = f.vehicle_id
        vp.vehicle.label = f.label or f.vehicle_id
        vp.position.latitude = f.lat
        vp.position.longitude = f.lon
        if f.heading is not None:
            vp.position.bearing = float(f.heading)
        if f.speed_kmh is not None:
            vp.position.speed = float(f.speed_kmh) / 3.6
        vp.timestamp = int(f.ts.timestamp())
        m = matches.get(f.vehicle_id)
        if m is not None:
            vp.trip.trip_id = m.trip_id
            vp.trip.route_id = m.route_id
            if m.direction_id is not None:
                vp.trip.direction_id = m.direction_id
            vp.trip.start_date = m.start_date
            vp.trip.start_time = m.start_time
            vp.trip.schedule_relationship = rt.TripDescriptor.SCHEDULED
        elif f.route_id and (static is None or f.route_id in static.routes):
            vp.trip.route_id = f.route_id
        elif f.route_id:
            log.warning("gtfs_rt_unknown_route vehicle=%s route=%s", f.vehicle_id, f.route_id)
    return feed


def feed_to_dict(feed: rt.FeedMessage) -> dict[str, Any]:
    """The feed as JSON-able dict (the ``?format=json`` debug view)."""
    return json_format.MessageToDict(feed, preserving_proto_field_name=True)
