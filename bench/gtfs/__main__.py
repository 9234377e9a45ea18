"""Time one GTFS-Realtime refresh for a fleet: trip matching of every bus, then
VehiclePositions and TripUpdates built and serialised, as the API does each
``AKITA_OPENDATA_CACHE_S``.

The feed: the test corridor feed widened to enough routes for the fleet (24 routes
sharing the corridor, blocks, non-timepoint stops, shapes). The fleet: the simulator
of the acceptance test (late 0-20 min, 10 m noise, 5 % detouring), one fix per bus
every 15 s. The first refresh matches every bus afresh; later ones mostly keep trips.
Pinned to one CPU core. Target: <= 200 ms per refresh for 300 buses.

Usage::

    python -m bench.gtfs [--buses 300] [--minutes 90]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from cloud.opendata.gtfs_rt import build_vehicle_positions
from cloud.opendata.gtfs_static import GtfsStatic
from cloud.opendata.matching import TripMatcher
from cloud.opendata.trip_updates import build_trip_updates
from tests.cloud.opendata import bus_sim
from tests.cloud.opendata.corridor_feed import build, true_trips, write


def fleet_branches(routes: int) -> dict[str, tuple[float, float, int]]:
    return {
        f"R{i + 1:02d}": (15.0 * (i % 12) - 60.0, 4000.0 + 250.0 * (i % 5), 240 + 30 * (i % 4))
        for i in range(routes)
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--buses", type=int, default=300)
    ap.add_argument("--minutes", type=float, default=90.0)
    ap.add_argument("--routes", type=int, default=24)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    trips = true_trips(fleet_branches(args.routes))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        static = GtfsStatic.load(write(Path(tmp), build(trips)))
        load_s = time.perf_counter() - t
    buses = bus_sim.make_buses(args.buses, seed=11, trips=trips)
    matcher = TripMatcher(static)
    t = time.perf_counter()
    matcher.prepare()
    prepare_s = time.perf_counter() - t
    cold_ms: float | None = None
    times, matched, sizes = [], [], []
    for ts, fixes, _ in bus_sim.run(buses, hours=args.minutes / 60, seed=11):
        t = time.perf_counter()
        results = matcher.update(fixes)
        vp = build_vehicle_positions(fixes, now=ts, matches=results, static=static)
        tu = build_trip_updates(fixes, results, matcher, now=ts)
        size = len(vp.SerializeToString()) + len(tu.SerializeToString())
        times.append((time.perf_counter() - t) * 1000)
        matched.append(sum(r.match is not None for r in results.values()) / max(1, len(fixes)))
        sizes.append((len(fixes), size))
        if cold_ms is None and len(fixes) == args.buses:
            # a restart with the whole fleet out: every bus matched afresh at once
            cold = TripMatcher(static)
            cold.geo = matcher.geo
            t = time.perf_counter()
            results = cold.update(fixes)
            build_vehicle_positions(fixes, now=ts, matches=results, static=static)
            build_trip_updates(fixes, results, cold, now=ts).SerializeToString()
            cold_ms = (time.perf_counter() - t) * 1000
    steady = sorted(times[40:]) or sorted(times)
    full = [i for i, (n, _) in enumerate(sizes) if n == args.buses]
    print(f"feed: {args.routes} routes, {static.trip_count()} trips, loaded in {load_s:.2f} s")
    print(f"fleet: {args.buses} buses, {len(times)} refreshes of 15 s, on one core")
    print(f"trip geometries placed on their lines in {prepare_s:.2f} s (once per feed version)")
    if cold_ms is not None:
        print(f"cold refresh, all {args.buses} buses matched afresh: {cold_ms:.1f} ms")
    if full:
        at_full = sorted(times[i] for i in full)
        print(
            f"refreshes with all {args.buses} buses out ({len(at_full)}): "
            f"median {statistics.median(at_full):.1f} ms, "
            f"p95 {at_full[int(0.95 * (len(at_full) - 1))]:.1f} ms, max {at_full[-1]:.1f} ms"
        )
    print(
        f"all refreshes after the first 10 min: median {statistics.median(steady):.1f} ms, "
        f"p95 {steady[int(0.95 * (len(steady) - 1))]:.1f} ms, max {steady[-1]:.1f} ms"
    )
    print(f"share of buses with a trip: {statistics.mean(matched[40:] or matched):.3f}")
    print(f"VehiclePositions + TripUpdates bytes at the end: {sizes[-1][1]}")
    print("target: <= 200 ms per refresh (matching + both feeds) for 300 buses")


if __name__ == "__main__":
    main()
