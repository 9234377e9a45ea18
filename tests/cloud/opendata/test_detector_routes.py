"""The cloud service gives the vehicle detector the bus routes of the GTFS feed.

Without them a bus waiting at its terminal, or parked there overnight, raised a
long-stop alarm (seen in the demo), and off-route detection had nothing to measure.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.opendata.gtfs_static import SAMPLE_FEED, GtfsStatic
from cloud.service import CloudService
from tests.cloud.api.conftest import make_service
from tests.cloud.detect.helpers import reading


def test_every_route_of_the_sample_feed_becomes_a_stop_path() -> None:
    feed = GtfsStatic.load(SAMPLE_FEED)
    shapes = feed.route_shapes()
    assert set(shapes) == set(feed.routes)
    for route_id, points in shapes.items():
        longest = max(len(t.stop_times) for t in feed.trips_by_route[route_id])
        assert len(points) == longest >= 2


def _long_stop(service: CloudService, lat: float, lon: float, route_id: str) -> bool:
    engine = service.detectors
    out = []
    for i in range(20):  # 19 minutes standing still (the default limit is 15)
        values = {"lat": lat, "lon": lon, "speed": 0.0, "route_id": route_id, "fix": True}
        out += engine.feed([reading("vehicle", f"bus-{lat}", i * 60, **values)], {})
    return any(d.kind == "vehicle_long_stop" and d.active for d in out)


def test_a_bus_at_its_terminal_is_on_layover_and_one_mid_route_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AKITA_GTFS_STATIC", raising=False)
    service = make_service(tmp_path)
    try:
        shapes = GtfsStatic.load(SAMPLE_FEED).route_shapes()
        route_id, points = next(iter(shapes.items()))
        assert route_id in service.detectors.vehicle.routes
        terminal = points[0]
        middle = points[len(points) // 2]
        mid = ((middle[0] + points[len(points) // 2 - 1][0]) / 2, middle[1])
        assert not _long_stop(service, terminal[0], terminal[1], route_id)
        assert _long_stop(service, mid[0], mid[1], route_id)
    finally:
        service.stop()


def test_no_feed_leaves_the_detector_without_routes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AKITA_GTFS_STATIC", "none")
    service = make_service(tmp_path)
    try:
        assert service.detectors.vehicle.routes == {}
    finally:
        service.stop()
