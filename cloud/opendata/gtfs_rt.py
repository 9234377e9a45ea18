"""GTFS-Realtime VehiclePositions, built as a pure function over bus positions.

Each bus becomes one ``FeedEntity`` (id = device id) with its position (WGS84, bearing
in degrees, speed in m/s), the time of the fix, and a ``TripDescriptor``:

- with a static feed: the trip instance :mod:`cloud.opendata.matching` finds
  (``trip_id``, ``route_id``, ``direction_id``, ``start_date``, ``start_time``,
  ``schedule_relationship``), each instance given to one bus at most; no trip when
  the bus is off route, out of service or its route is unknown to the feed;
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

from cloud.opendata.gtfs_static import GtfsStatic
from cloud.opendata.matching import TripMatch, TripMatcher, VehicleMatch

log = logging.getLogger(__name__)

GTFS_RT_VERSION = "2.0"


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


def new_feed(now: datetime) -> rt.FeedMessage:
    feed = rt.FeedMessage()
    feed.header.gtfs_realtime_version = GTFS_RT_VERSION
    feed.header.incrementality = rt.FeedHeader.FULL_DATASET
    feed.header.timestamp = int(now.timestamp())
    return feed


def set_trip(desc: rt.TripDescriptor, m: TripMatch) -> None:
    """A matched trip instance; ``exact_times=0`` instances are UNSCHEDULED, as the
    spec says for frequency-based trips without fixed times."""
    desc.trip_id = m.trip_id
    desc.route_id = m.route_id
    if m.direction_id is not None:
        desc.direction_id = m.direction_id
    desc.start_date = m.start_date
    desc.start_time = m.start_time
    desc.schedule_relationship = (
        rt.TripDescriptor.UNSCHEDULED if m.frequency_based else rt.TripDescriptor.SCHEDULED
    )


def match_fixes(
    fixes: Sequence[VehicleFix], static: GtfsStatic | None, matcher: TripMatcher | None
) -> dict[str, VehicleMatch]:
    """Vehicle id -> what the matcher says (a one-shot matcher when none is kept)."""
    if matcher is None:
        if static is None:
            return {}
        matcher = TripMatcher(static)
    return matcher.update(fixes)


def build_vehicle_positions(
    fixes: Sequence[VehicleFix],
    *,
    now: datetime,
    static: GtfsStatic | None = None,
    matcher: TripMatcher | None = None,
    matches: Mapping[str, VehicleMatch] | None = None,
) -> rt.FeedMessage:
    """A FULL_DATASET VehiclePositions feed for ``fixes`` at ``now``.

    ``matcher`` keeps each bus's trip across calls (the API keeps one per feed
    version); ``matches`` are results already computed for these fixes (the API
    builds TripUpdates from the same ones).
    """
    static = matcher.static if matcher is not None else static
    feed = new_feed(now)
    if matches is None:
        matches = match_fixes(fixes, static, matcher)
    for f in sorted(fixes, key=lambda x: x.vehicle_id):
        entity = feed.entity.add()
        entity.id = f.vehicle_id
        vp = entity.vehicle
        vp.vehicle.id = f.vehicle_id
        vp.vehicle.label = f.label or f.vehicle_id
        vp.position.latitude = f.lat
        vp.position.longitude = f.lon
        if f.heading is not None:
            vp.position.bearing = float(f.heading) % 360.0
        if f.speed_kmh is not None:
            vp.position.speed = max(0.0, float(f.speed_kmh)) / 3.6
        vp.timestamp = int(f.ts.timestamp())
        vm = matches.get(f.vehicle_id)
        if vm is not None and vm.match is not None:
            set_trip(vp.trip, vm.match)
        elif static is None and f.route_id:
            # no static feed: the route as reported, nothing a consumer could misread
            vp.trip.route_id = f.route_id
        elif static is not None and f.route_id and f.route_id not in static.routes:
            log.warning("gtfs_rt_unknown_route vehicle=%s route=%s", f.vehicle_id, f.route_id)
        # a bus of a known route with no trip (off route, out of service, unclear) gets
        # no descriptor: a route-only descriptor cannot carry a valid schedule_relationship
        # and a planner would attach it to some trip of the route anyway
    return feed


def feed_to_dict(feed: rt.FeedMessage) -> dict[str, Any]:
    """The feed as JSON-able dict (the ``?format=json`` debug view)."""
    return json_format.MessageToDict(feed, preserving_proto_field_name=True)
