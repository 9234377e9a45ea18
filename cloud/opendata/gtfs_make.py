"""Write a GTFS static feed for bus routes given as out-and-back polylines.

The city's real feed comes from its bus operator; this produces the small sample
feed shipped in ``cloud/opendata/sample_gtfs/`` from a simulator export's
``devices.json`` (contract C: ``routes`` polylines and per-bus ``route_id`` facts), so
the sample stays consistent with the simulated routes.

Each route gets its polyline points as stops, an outbound trip (direction 0, from the
first point) and an inbound trip (direction 1), timed like the simulator's
timetable (26 km/h, a 20 s dwell every ~400 m, 5 min layover at the ends), and
run as frequency-based service (``exact_times=0``) 06:00-22:00 with a headway of the
out-and-back cycle divided by the buses on the route.

``python -m cloud.opendata.gtfs_make DEVICES_JSON OUT_DIR``
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cloud.opendata.gtfs_static import format_gtfs_time, haversine_m

# the simulator draws each bus's cruise speed from 22-30 km/h; a timetable runs at the mean
NOMINAL_KMH = 26.0
STOP_SPACING_M = 400.0
DWELL_S = 20.0
LAYOVER_S = 300.0
SERVICE = (6 * 3600, 22 * 3600)
AGENCY = {
    "agency_id": "akita-city-sim",
    "agency_name": "秋田市 (simulated bus routes)",
    "agency_url": "https://www.city.akita.lg.jp/",
    "agency_timezone": "Asia/Tokyo",
    "agency_lang": "ja",
}
FEED_START, FEED_END = "20260101", "20271231"


def _csv(header: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(header), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in header})
    return buf.getvalue()


def _leg_times(points: Sequence[Sequence[float]], cruise_ms: float) -> list[int]:
    """Seconds from the leg's start to each point, as the simulator's timetable runs."""
    dists = [0.0]
    for a, b in itertools.pairwise(points):
        dists.append(dists[-1] + haversine_m(a[0], a[1], b[0], b[1]))
    total = dists[-1]
    n = max(1, round(total / STOP_SPACING_M))
    out = []
    for d in dists:
        dwells = min(n - 1, math.floor(d / (total / n) + 1e-9)) if d < total else n - 1
        out.append(round(d / cruise_ms + DWELL_S * dwells))
    return out


def build_feed(devices_json: Mapping[str, Any]) -> dict[str, str]:
    """File name -> text of a GTFS feed for the bus routes in a devices.json."""
    facts: Mapping[str, Mapping[str, Any]] = devices_json.get("sites", {})
    buses: dict[str, int] = {}
    for dev in devices_json.get("devices", []):
        if dev.get("kind") == "vehicle" and dev.get("vehicle_type") == "bus":
            f = facts.get(dev["device_id"], {})
            if f.get("route_id"):
                buses[f["route_id"]] = buses.get(f["route_id"], 0) + 1
    routes, stops, trips, stop_times, freqs = [], [], [], [], []
    for rid in sorted(buses):
        pts = devices_json["routes"][rid]
        cruise = NOMINAL_KMH / 3.6
        routes.append(
            {
                "route_id": rid,
                "agency_id": AGENCY["agency_id"],
                "route_short_name": rid.removeprefix("route-"),
                "route_long_name": f"秋田駅 - {rid}",
                "route_type": 3,
            }
        )
        for i, (lat, lon) in enumerate(pts):
            stops.append(
                {
                    "stop_id": f"{rid}-s{i:02d}",
                    "stop_name": "秋田駅" if i == 0 else f"{rid} 停留所 {i}",
                    "stop_lat": f"{lat:.6f}",
                    "stop_lon": f"{lon:.6f}",
                }
            )
        leg = _leg_times(pts, cruise)
        cycle = 2 * (leg[-1] + LAYOVER_S)
        headway = max(60, round(cycle / buses[rid]))
        for direction, order in ((0, list(range(len(pts)))), (1, list(range(len(pts)))[::-1])):
            tid = f"{rid}-{'out' if direction == 0 else 'in'}"
            trips.append(
                {
                    "route_id": rid,
                    "service_id": "daily",
                    "trip_id": tid,
                    "direction_id": direction,
                    "trip_headsign": "郊外" if direction == 0 else "秋田駅",
                }
            )
            times = leg if direction == 0 else [leg[-1] - t for t in leg][::-1]
            for seq, idx in enumerate(order, 1):
                t = format_gtfs_time(SERVICE[0] + times[seq - 1])
                stop_times.append(
                    {
                        "trip_id": tid,
                        "arrival_time": t,
                        "departure_time": t,
                        "stop_id": f"{rid}-s{idx:02d}",
                        "stop_sequence": seq,
                    }
                )
            freqs.append(
                {
                    "trip_id": tid,
                    "start_time": format_gtfs_time(SERVICE[0]),
                    "end_time": format_gtfs_time(SERVICE[1]),
                    "headway_secs": headway,
                    "exact_times": 0,
                }
            )
    days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    return {
        "agency.txt": _csv(list(AGENCY), [AGENCY]),
        "routes.txt": _csv(
            ["route_id", "agency_id", "route_short_name", "route_long_name", "route_type"], routes
        ),
        "stops.txt": _csv(["stop_id", "stop_name", "stop_lat", "stop_lon"], stops),
        "trips.txt": _csv(
            ["route_id", "service_id", "trip_id", "direction_id", "trip_headsign"], trips
        ),
        "stop_times.txt": _csv(
            ["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence"], stop_times
        ),
        "frequencies.txt": _csv(
            ["trip_id", "start_time", "end_time", "headway_secs", "exact_times"], freqs
        ),
        "calendar.txt": _csv(
            ["service_id", *days, "start_date", "end_date"],
            [
                {
                    "service_id": "daily",
                    **dict.fromkeys(days, 1),
                    "start_date": FEED_START,
                    "end_date": FEED_END,
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
                    "feed_publisher_name": "秋田市 (Akita City) - sample for the simulator",
                    "feed_publisher_url": "https://www.city.akita.lg.jp/",
                    "feed_lang": "ja",
                    "feed_start_date": FEED_START,
                    "feed_end_date": FEED_END,
                    "feed_version": "sim-sample-1",
                }
            ],
        ),
    }


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    devices = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, text in build_feed(devices).items():
        (out / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
