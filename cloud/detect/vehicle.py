"""Buses and snowplows: stale position, off-route against the route shape, long stops.

Route shapes are polylines of [lat, lon]; distances use a local equirectangular
projection per route (metres; error well under 1 % across a city), and the distance
to all segments of a route is one numpy expression.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from cloud.detect.base import Detection, DeviceContext, restore_slots
from cloud.detect.config import VehicleConfig
from cloud.detect.flags import Flags
from schemas.alert import Severity
from schemas.wire import Reading

EARTH_M_PER_DEG = 111_320.0


class RouteShape:
    """A route polyline prepared for fast point-to-polyline distance."""

    __slots__ = (
        "a",
        "a_list",
        "ab",
        "ab2",
        "ab2_list",
        "ab_list",
        "cum",
        "kx",
        "lat0",
        "length",
        "lon0",
        "terminals",
    )
    # the per-sample hint path reads plain lists: numpy scalar access is slower

    def __init__(self, points: Sequence[Sequence[float]]) -> None:
        if len(points) < 2:
            raise ValueError(f"route needs at least 2 points, got {len(points)}")
        pts = np.asarray(points, dtype=float)
        self.lat0 = float(pts[:, 0].mean())
        self.lon0 = float(pts[:, 1].mean())
        self.kx = math.cos(math.radians(self.lat0)) * EARTH_M_PER_DEG
        xy = self._xy(pts[:, 0], pts[:, 1])
        self.a = xy[:-1]
        self.ab = xy[1:] - xy[:-1]
        self.ab2 = np.maximum((self.ab**2).sum(axis=1), 1e-9)
        seg_len = np.sqrt((self.ab**2).sum(axis=1))
        # distance along the line at each segment's start: the open-data trip matcher
        # measures a bus's progress with the same geometry this detector measures to
        self.cum = np.concatenate(([0.0], np.cumsum(seg_len)[:-1]))
        self.length = float(seg_len.sum())
        self._lists()
        # an out-and-back route turns at the vertex farthest from its start
        far = int(np.argmax(((xy - xy[0]) ** 2).sum(axis=1)))
        self.terminals = [tuple(pts[0]), tuple(pts[-1]), tuple(pts[far])]

    def _lists(self) -> None:
        self.a_list = self.a.tolist()
        self.ab_list = self.ab.tolist()
        self.ab2_list = self.ab2.tolist()

    def _xy(self, lat: Any, lon: Any) -> np.ndarray:
        return np.column_stack(
            (
                (np.asarray(lon) - self.lon0) * self.kx,
                (np.asarray(lat) - self.lat0) * EARTH_M_PER_DEG,
            )
        )

    def distance_m(self, lat: float, lon: float) -> float:
        """Distance from the point to the nearest segment, metres (all segments, numpy)."""
        return self.nearest(lat, lon)[0]

    def nearest(self, lat: float, lon: float) -> tuple[float, int]:
        p = np.array([(lon - self.lon0) * self.kx, (lat - self.lat0) * EARTH_M_PER_DEG])
        ap = p - self.a
        u = np.clip((ap * self.ab).sum(axis=1) / self.ab2, 0.0, 1.0)
        d2 = ((ap - u[:, None] * self.ab) ** 2).sum(axis=1)
        i = int(d2.argmin())
        return math.sqrt(float(d2[i])), i

    def project(self, lat: float, lon: float, first_seg: int = 0) -> tuple[float, float, int]:
        """Distance to the line (m), distance along it of the nearest point (m), and that
        segment; only segments from ``first_seg`` on (a loop passes a place twice)."""
        p = np.array([(lon - self.lon0) * self.kx, (lat - self.lat0) * EARTH_M_PER_DEG])
        ap = p - self.a[first_seg:]
        ab = self.ab[first_seg:]
        u = np.clip((ap * ab).sum(axis=1) / self.ab2[first_seg:], 0.0, 1.0)
        d2 = ((ap - u[:, None] * ab) ** 2).sum(axis=1)
        i = int(d2.argmin())
        seg = first_seg + i
        along = float(self.cum[seg]) + float(u[i]) * math.sqrt(float(self.ab2[seg]))
        return math.sqrt(float(d2[i])), along, seg

    def bearing(self, seg: int) -> float:
        """Direction of travel along segment ``seg``, degrees clockwise from north."""
        dx, dy = self.ab_list[seg]
        return math.degrees(math.atan2(dx, dy)) % 360.0

    def distance_near(self, lat: float, lon: float, hint: int, span: int = 3) -> tuple[float, int]:
        """Distance to the segments around ``hint`` only (pure Python, a few µs): an upper
        bound of :meth:`distance_m`, exact while the vehicle stays near that segment."""
        x = (lon - self.lon0) * self.kx
        y = (lat - self.lat0) * EARTH_M_PER_DEG
        best, best_i = math.inf, hint
        a, ab, ab2 = self.a_list, self.ab_list, self.ab2_list
        for i in range(max(0, hint - span), min(len(a), hint + span + 1)):
            ax, ay = a[i]
            bx, by = ab[i]
            px, py = x - ax, y - ay
            u = min(1.0, max(0.0, (px * bx + py * by) / ab2[i]))
            dx, dy = px - u * bx, py - u * by
            d2 = dx * dx + dy * dy
            if d2 < best:
                best, best_i = d2, i
        return math.sqrt(best), best_i


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000.0 * math.asin(math.sqrt(h))


class _Vehicle:
    __slots__ = ("anchor", "anchor_t", "last_fix_t", "newest", "off", "route_id", "seg")

    def __init__(self) -> None:
        self.last_fix_t: float | None = None
        self.route_id: str | None = None
        self.off = 0
        self.anchor: tuple[float, float] | None = None
        self.anchor_t = 0.0
        self.seg = 0  # nearest route segment last time
        self.newest = float("-inf")  # time of the newest reading taken

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        restore_slots(self, state, newest=float("-inf"))


class VehicleDetector:
    name = "vehicle"

    def __init__(
        self,
        config: VehicleConfig,
        routes: Mapping[str, Sequence[Sequence[float]]] | None = None,
        sites: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.cfg = config
        self.sites = sites if sites is not None else {}
        self.flags = Flags(self.name)
        self.vehicles: dict[str, _Vehicle] = {}
        self.routes: dict[str, RouteShape] = {}
        self.set_routes({**config.routes, **(routes or {})})

    def set_routes(self, routes: Mapping[str, Sequence[Sequence[float]]]) -> None:
        for rid, pts in routes.items():
            self.routes[rid] = RouteShape(pts)

    def feed(self, readings: Sequence[Reading], devices: DeviceContext) -> list[Detection]:
        out: list[Detection] = []
        for r in readings:
            self.feed_one(out, r.device_id, r.ts, r.values)
        return out

    def feed_one(self, out: list[Detection], dev: str, ts: datetime, v: Any) -> None:
        c = self.cfg
        s = self.vehicles.get(dev)
        if s is None:
            s = self.vehicles[dev] = _Vehicle()
        t = ts.timestamp()
        if t < s.newest:
            # a late batch (applied after the detector tier stopped waiting for it): one fix
            # is not worth undoing the state of now (an older fix time made the position
            # look stale, an older stop anchor made a stop look long)
            return
        s.newest = t
        if v.route_id is not None:
            s.route_id = v.route_id
        has_fix = v.fix is not False and v.lat is not None and v.lon is not None
        if not has_fix:
            if v.fix is False:
                if s.last_fix_t is None:
                    s.last_fix_t = t
                self._stale_check(out, dev, s, t)
            return
        s.last_fix_t = t
        if self.flags.active(dev, "vehicle_stale"):
            self.flags.set(out, dev, "vehicle_stale", ts, False, title="Vehicle position fresh")
        lat, lon = v.lat, v.lon
        shape = self.routes.get(s.route_id) if s.route_id else None
        if shape is not None:
            d, s.seg = shape.distance_near(lat, lon, s.seg)
            if d > c.on_route_m:  # the local guess may be wrong: look at the whole route
                d, s.seg = shape.nearest(lat, lon)
            on = self.flags.active(dev, "off_route")
            s.off = s.off + 1 if d > c.off_route_m else 0
            off = s.off >= c.off_route_samples or (on and d > c.on_route_m)
            if off != on:
                self.flags.set(
                    out,
                    dev,
                    "off_route",
                    ts,
                    off,
                    severity=Severity.MINOR,
                    title="Vehicle off its route" if off else "Vehicle back on route",
                    message=f"{d:.0f} m from route {s.route_id}",
                    value=round(d, 1),
                    extra={"route_id": s.route_id},
                )
        speed = v.speed
        if speed is not None and speed <= c.stop_speed_kmh:
            if (
                s.anchor is None
                or haversine_m(s.anchor[0], s.anchor[1], lat, lon) > c.stop_radius_m
            ):
                s.anchor, s.anchor_t = (lat, lon), t
                self._end_stop(out, dev, ts)
            elif (
                t - s.anchor_t >= c.long_stop_s
                and not self.flags.active(dev, "vehicle_long_stop")
                and not self._layover(dev, s, lat, lon, v.plow_down)
            ):
                self.flags.set(
                    out,
                    dev,
                    "vehicle_long_stop",
                    ts,
                    True,
                    severity=Severity.MINOR,
                    title="Vehicle stopped for a long time",
                    message=f"stopped {(t - s.anchor_t) / 60:.0f} min",
                    value=round(t - s.anchor_t, 1),
                )
        elif speed is not None:
            s.anchor = None
            self._end_stop(out, dev, ts)

    def _layover(
        self, dev: str, s: _Vehicle, lat: float, lon: float, plow_down: bool | None
    ) -> bool:
        """Standing at a terminal or the depot, or a parked plow, is not an anomaly."""
        if plow_down is False:
            return True
        r = self.cfg.terminal_radius_m
        places: list[Any] = []
        shape = self.routes.get(s.route_id) if s.route_id else None
        if shape is not None:
            places += shape.terminals
        depot = self.sites.get(dev, {}).get("depot")
        if isinstance(depot, list | tuple) and len(depot) == 2:
            places.append(depot)
        return any(haversine_m(p[0], p[1], lat, lon) <= r for p in places)

    def _end_stop(self, out: list[Detection], dev: str, ts: datetime) -> None:
        if self.flags.active(dev, "vehicle_long_stop"):
            self.flags.set(out, dev, "vehicle_long_stop", ts, False, title="Vehicle moving")

    def _stale_check(self, out: list[Detection], dev: str, s: _Vehicle, t: float) -> None:
        if s.last_fix_t is None or t - s.last_fix_t < self.cfg.stale_s:
            return
        if not self.flags.active(dev, "vehicle_stale"):
            self.flags.set(
                out,
                dev,
                "vehicle_stale",
                datetime.fromtimestamp(max(t, s.last_fix_t + self.cfg.stale_s), UTC),
                True,
                severity=Severity.MINOR,
                title="Vehicle position stale",
                message=f"no GPS fix for {t - s.last_fix_t:.0f} s",
                value=round(t - s.last_fix_t, 1),
            )

    def tick(self, now: datetime) -> list[Detection]:
        out: list[Detection] = []
        t = now.timestamp()
        for dev, s in self.vehicles.items():
            self._stale_check(out, dev, s, t)
        return out
