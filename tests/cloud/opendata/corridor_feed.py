"""A small GTFS-JP-style feed with a shared corridor, blocks and non-timepoint stops,
and the exact timetable its buses really run (to simulate them).

Four routes leave 秋田駅 eastward along one 3 km corridor (its stops shared), then
branch for 4-5 km. Shapes follow the road with vertices between stops; every other
intermediate stop is a non-timepoint (``timepoint=0``, blank times). Trips run
06:00-12:00 every 5-10 minutes per route and direction; blocks chain an outbound
trip, a layover of at least 6 minutes at the far end, the next inbound trip, and so on.

``python -m tests.cloud.opendata.corridor_feed OUT_DIR`` rewrites the bundled copy.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.opendata.gtfs_static import format_gtfs_time, haversine_m

FEED_DIR = Path(__file__).parent / "feeds" / "corridor"
STATION = (39.7172, 140.1268)
CORRIDOR_BEARING = 90.0
CORRIDOR_M = 3000.0
BRANCHES = {  # route -> (bearing, length m, headway s)
    "R1": (40.0, 4000.0, 240),
    "R2": (90.0, 5000.0, 300),
    "R3": (140.0, 4500.0, 360),
    "R4": (10.0, 4000.0, 420),
}
STOP_M = 400.0
SPEED_MS = 22.0 / 3.6
DWELL_S = 20
LAYOVER_S = 360
SERVICE = (6 * 3600, 12 * 3600)


def offset(p: tuple[float, float], bearing: float, dist: float) -> tuple[float, float]:
    b = math.radians(bearing)
    dlat = dist * math.cos(b) / 111_320.0
    dlon = dist * math.sin(b) / (111_320.0 * math.cos(math.radians(p[0])))
    return (p[0] + dlat, p[1] + dlon)


@dataclass
class Line:
    """A route's outbound line: shape points, stop indexes into them, along of each."""

    points: list[tuple[float, float]]
    stop_idx: list[int]
    along: list[float]


def outbound_line(route: str, branches: Mapping[str, tuple[float, float, int]]) -> Line:
    bearing, length, _ = branches[route]
    pts: list[tuple[float, float]] = [STATION]
    # vertices every 100 m with a gentle wiggle: a shape is not the stop-to-stop path
    legs = [(CORRIDOR_BEARING, CORRIDOR_M), (bearing, length)]
    for leg_bearing, leg_len in legs:
        for k in range(int(leg_len // 100)):
            wiggle = 12.0 if k % 4 == 1 else (-12.0 if k % 4 == 3 else 0.0)
            pts.append(offset(pts[-1], leg_bearing + wiggle, 100.0))
    along = [0.0]
    for a, b in itertools.pairwise(pts):
        along.append(along[-1] + haversine_m(a[0], a[1], b[0], b[1]))
    stop_idx = [i for i in range(len(pts)) if i % int(STOP_M // 100) == 0]
    if stop_idx[-1] != len(pts) - 1:
        stop_idx.append(len(pts) - 1)
    return Line(pts, stop_idx, along)


def stop_id(route: str, line: Line, k: int) -> str:
    # corridor stops (first 3 km) are shared by every route
    if line.along[line.stop_idx[k]] <= CORRIDOR_M + 1:
        return f"C{k:02d}"
    return f"{route}-{k:02d}"


@dataclass
class TrueTrip:
    trip_id: str
    route_id: str
    direction: int
    block_id: str
    shape: list[tuple[float, float]]
    shape_along: list[float]
    stop_along: list[float]
    arr: list[int]  # true GTFS seconds at each stop
    dep: list[int]
    stop_ids: list[str]


def true_trips(
    branches: Mapping[str, tuple[float, float, int]] = BRANCHES,
) -> list[TrueTrip]:
    """Every trip as buses really run it (dwell at every stop), blocks assigned."""
    trips: list[TrueTrip] = []
    for route, (_, _, headway) in branches.items():
        line = outbound_line(route, branches)
        total = line.along[-1]
        ids = [stop_id(route, line, k) for k in range(len(line.stop_idx))]
        stop_al = [line.along[i] for i in line.stop_idx]
        run = [round(a / SPEED_MS) + DWELL_S * k for k, a in enumerate(stop_al)]
        leg = run[-1]
        free: list[tuple[int, str]] = []  # (time a bus is free at the far end, block)
        home: list[tuple[int, str]] = []
        n_blocks = 0
        for k in range((SERVICE[1] - SERVICE[0]) // headway):
            t0 = SERVICE[0] + k * headway
            for direction in (0, 1):
                pool = home if direction == 0 else free
                ready = [b for b in pool if b[0] <= t0]
                if ready:
                    pool.remove(ready[0])
                    block = ready[0][1]
                else:
                    n_blocks += 1
                    block = f"{route}-b{n_blocks:02d}"
                if direction == 0:
                    shape, al, sal, sids = line.points, line.along, stop_al, ids
                else:
                    shape = line.points[::-1]
                    al = [total - a for a in line.along[::-1]]
                    sal = [total - a for a in stop_al[::-1]]
                    sids = ids[::-1]
                times = (
                    [t0 + r for r in run] if direction == 0 else [t0 + leg - r for r in run[::-1]]
                )
                trips.append(
                    TrueTrip(
                        f"{route}-{('out', 'in')[direction]}-{format_gtfs_time(t0)[:5]}",
                        route,
                        direction,
                        block,
                        shape,
                        al,
                        sal,
                        times,
                        list(times),
                        sids,
                    )
                )
                (free if direction == 0 else home).append((t0 + leg + LAYOVER_S, block))
                (free if direction == 0 else home).sort()
    for t in trips:  # a dwell: arrive DWELL_S before departing at intermediate stops
        t.arr = [d - (DWELL_S if 0 < i < len(t.dep) - 1 else 0) for i, d in enumerate(t.dep)]
    return trips


def _csv(header: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(header), lineterminator="\r\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in header})
    return buf.getvalue()


def build(trips: Sequence[TrueTrip] | None = None) -> dict[str, str]:
    trips = list(trips or true_trips())
    stops: dict[str, tuple[float, float, str]] = {}
    shapes: dict[str, list[tuple[float, float]]] = {}
    st_rows: list[dict[str, Any]] = []
    trip_rows: list[dict[str, Any]] = []
    for t in trips:
        shape_id = f"{t.route_id}-{t.direction}"
        shapes.setdefault(shape_id, t.shape)
        # stops are shape vertices: stop k sits at the vertex with the same along
        for k, sid in enumerate(t.stop_ids):
            if sid not in stops:
                i = min(
                    range(len(t.shape_along)), key=lambda j: abs(t.shape_along[j] - t.stop_along[k])
                )
                name = "秋田駅" if k == 0 and t.direction == 0 else f"{sid} 停留所"
                stops[sid] = (*t.shape[i], name)
        trip_rows.append(
            {
                "route_id": t.route_id,
                "service_id": "平日",
                "trip_id": t.trip_id,
                "trip_headsign": "秋田駅" if t.direction else f"{t.route_id} 終点",
                "direction_id": t.direction,
                "block_id": t.block_id,
                "shape_id": shape_id,
            }
        )
        last = len(t.stop_ids) - 1
        for k, sid in enumerate(t.stop_ids):
            timed = k in (0, last) or k % 2 == 0
            st_rows.append(
                {
                    "trip_id": t.trip_id,
                    "arrival_time": format_gtfs_time(t.arr[k]) if timed else "",
                    "departure_time": format_gtfs_time(t.dep[k]) if timed else "",
                    "stop_id": sid,
                    "stop_sequence": k + 1,
                    "pickup_type": 0,
                    "drop_off_type": 0,
                    "timepoint": 1 if timed else 0,
                }
            )
    days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    return {
        "agency.txt": _csv(
            ["agency_id", "agency_name", "agency_url", "agency_timezone", "agency_lang"],
            [
                {
                    "agency_id": "1410001000000",  # GTFS-JP: corporate number as agency_id
                    "agency_name": "秋田回廊バス (試験用)",
                    "agency_url": "https://www.city.akita.lg.jp/",
                    "agency_timezone": "Asia/Tokyo",
                    "agency_lang": "ja",
                }
            ],
        ),
        "routes.txt": _csv(
            ["route_id", "agency_id", "route_short_name", "route_long_name", "route_type"],
            [
                {
                    "route_id": r,
                    "agency_id": "1410001000000",
                    "route_short_name": r,
                    "route_long_name": f"秋田駅 - {r} 終点",
                    "route_type": 3,
                }
                for r in sorted({t.route_id for t in trips})
            ],
        ),
        "stops.txt": _csv(
            ["stop_id", "stop_name", "stop_lat", "stop_lon", "location_type"],
            [
                {
                    "stop_id": s,
                    "stop_name": n,
                    "stop_lat": f"{la:.6f}",
                    "stop_lon": f"{lo:.6f}",
                    "location_type": 0,
                }
                for s, (la, lo, n) in sorted(stops.items())
            ],
        ),
        "trips.txt": _csv(
            [
                "route_id",
                "service_id",
                "trip_id",
                "trip_headsign",
                "direction_id",
                "block_id",
                "shape_id",
            ],
            trip_rows,
        ),
        "stop_times.txt": _csv(
            [
                "trip_id",
                "arrival_time",
                "departure_time",
                "stop_id",
                "stop_sequence",
                "pickup_type",
                "drop_off_type",
                "timepoint",
            ],
            st_rows,
        ),
        "shapes.txt": _csv(
            ["shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence"],
            [
                {
                    "shape_id": sid,
                    "shape_pt_lat": f"{la:.6f}",
                    "shape_pt_lon": f"{lo:.6f}",
                    "shape_pt_sequence": i,
                }
                for sid, pts in sorted(shapes.items())
                for i, (la, lo) in enumerate(pts)
            ],
        ),
        "calendar.txt": _csv(
            ["service_id", *days, "start_date", "end_date"],
            [
                {
                    "service_id": "平日",
                    **dict.fromkeys(days, 1),
                    "start_date": "20260101",
                    "end_date": "20271231",
                }
            ],
        ),
        "feed_info.txt": _csv(
            [
                "feed_publisher_name",
                "feed_publisher_url",
                "feed_lang",
                "feed_start_date",
                "feed_end_date",
                "feed_version",
            ],
            [
                {
                    "feed_publisher_name": "秋田回廊バス (試験用)",
                    "feed_publisher_url": "https://www.city.akita.lg.jp/",
                    "feed_lang": "ja",
                    "feed_start_date": "20260101",
                    "feed_end_date": "20271231",
                    "feed_version": "corridor-1",
                }
            ],
        ),
    }


def write(out: Path, files: Mapping[str, str], encoding: str = "utf-8") -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_bytes(text.encode(encoding))
    return out


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else FEED_DIR, build())
