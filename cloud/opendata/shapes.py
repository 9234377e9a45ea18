"""Trip geometry: where along its shape a bus is, and when the timetable has it there.

A trip's line is its ``shapes.txt`` shape, else its stop-to-stop path, measured with the
off-route detector's :class:`~cloud.detect.vehicle.RouteShape`, so "off route" means the
same thing to the detector and to trip matching. Each stop is placed on the line in
order (a loop passes a place twice, so a stop is only looked for after the one before),
and the scheduled time at any distance along is interpolated between the stops' times.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from cloud.detect.vehicle import RouteShape
from cloud.opendata.gtfs_static import GtfsStatic, Trip


@dataclass(frozen=True)
class Projection:
    distance_m: float  # from the fix to the line
    along_m: float  # distance along the line of the nearest point
    bearing: float  # direction of travel there, degrees


class TripGeometry:
    """One trip's line, its stops' distances along it and their scheduled offsets."""

    __slots__ = ("arr", "dep", "shape", "stop_along")

    def __init__(self, trip: Trip, shape: RouteShape) -> None:
        self.shape = shape
        first = trip.stop_times[0].departure
        self.arr = [st.arrival - first for st in trip.stop_times]
        self.dep = [st.departure - first for st in trip.stop_times]
        along: list[float] = []
        seg = 0
        for st in trip.stop_times:
            _, a, seg = shape.project(st.lat, st.lon, seg)
            along.append(max(a, along[-1]) if along else a)
        self.stop_along = along

    def offset_at(self, along: float) -> float:
        """Scheduled seconds after the trip's first departure at ``along`` metres."""
        k = bisect.bisect_right(self.stop_along, along) - 1
        if k < 0:
            return 0.0
        if k >= len(self.stop_along) - 1:
            return float(self.arr[-1])
        a0, a1 = self.stop_along[k], self.stop_along[k + 1]
        if a1 <= a0:
            return float(self.dep[k])
        f = (along - a0) / (a1 - a0)
        return self.dep[k] + f * (self.arr[k + 1] - self.dep[k])

    def next_stop(self, along: float, tolerance_m: float = 15.0) -> int:
        """Index of the first stop still ahead (len(stops) when past the last)."""
        return bisect.bisect_right(self.stop_along, along + tolerance_m)

    @property
    def end_along(self) -> float:
        return self.stop_along[-1]


class GeometryIndex:
    """Lines and trip geometries of one static feed, built once per shape and trip."""

    def __init__(self, static: GtfsStatic) -> None:
        self.static = static
        self._shapes: dict[object, RouteShape] = {}
        self._trips: dict[str, TripGeometry] = {}

    def shape_key(self, trip: Trip) -> object:
        if trip.shape_id and trip.shape_id in self.static.shapes:
            return trip.shape_id
        return tuple((st.lat, st.lon) for st in trip.stop_times)

    def shape(self, trip: Trip) -> RouteShape:
        key = self.shape_key(trip)
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = RouteShape(self.static.trip_path(trip))
        return shape

    def trip(self, trip: Trip) -> TripGeometry:
        geo = self._trips.get(trip.trip_id)
        if geo is None:
            geo = self._trips[trip.trip_id] = TripGeometry(trip, self.shape(trip))
        return geo


def project(shape: RouteShape, lat: float, lon: float) -> Projection:
    d, along, seg = shape.project(lat, lon)
    return Projection(d, along, shape.bearing(seg))
