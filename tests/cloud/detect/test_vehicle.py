from __future__ import annotations

import pytest

from cloud.detect.config import DetectConfig, VehicleConfig
from cloud.detect.engine import DetectorEngine
from cloud.detect.vehicle import RouteShape
from tests.cloud.detect.helpers import at, kinds, reading

ROUTE = [[39.70, 140.10], [39.72, 140.10], [39.72, 140.12]]


def test_distance_to_polyline() -> None:
    shape = RouteShape(ROUTE)
    assert shape.distance_m(39.71, 140.10) == pytest.approx(0.0, abs=0.5)
    # 0.001° of longitude at 39.7° N is about 85.6 m
    assert shape.distance_m(39.71, 140.101) == pytest.approx(85.6, rel=0.01)
    # past the corner: distance to the nearest vertex
    assert shape.distance_m(39.725, 140.10) == pytest.approx(556.6, rel=0.01)
    # the local (hinted) search agrees with the full one near the hinted segment
    for lat, lon in [(39.705, 140.1003), (39.7195, 140.1004), (39.7201, 140.111)]:
        d_full, seg = shape.nearest(lat, lon)
        d_near, seg_near = shape.distance_near(lat, lon, seg)
        assert d_near == pytest.approx(d_full) and seg_near == seg
    with pytest.raises(ValueError, match="at least 2"):
        RouteShape([[39.7, 140.1]])


def test_off_route_needs_consecutive_samples_and_clears() -> None:
    engine = DetectorEngine(routes={"R1": ROUTE})
    out = []
    lons = [140.10, 140.105, 140.10, 140.105, 140.105, 140.105, 140.1005, 140.10]
    for i, lon in enumerate(lons):
        v = {"lat": 39.71, "lon": lon, "speed": 30.0, "route_id": "R1", "fix": True}
        out += engine.feed([reading("vehicle", "bus1", i * 10, **v)], {})
    got = [(d.active, d.ts) for d in out if d.kind == "off_route"]
    assert got == [(True, at(50)), (False, at(60))]


def test_stale_from_tick_and_from_no_fix_readings() -> None:
    engine = DetectorEngine(DetectConfig(vehicle=VehicleConfig(stale_s=60)))
    engine.feed([reading("vehicle", "bus1", 0, lat=39.7, lon=140.1, speed=10.0)], {})
    assert "vehicle_stale" not in kinds(engine.tick(at(50)))
    stale = [d for d in engine.tick(at(70)) if d.kind == "vehicle_stale"]
    assert len(stale) == 1 and stale[0].ts == at(70)
    out = engine.feed([reading("vehicle", "bus1", 80, lat=39.7, lon=140.1, speed=10.0)], {})
    assert kinds(out, active=False) == ["vehicle_stale"]
    out = []
    for t in (90, 120, 150):
        out += engine.feed([reading("vehicle", "bus1", t, fix=False)], {})
    assert [d.ts for d in out if d.kind == "vehicle_stale"] == [at(150)]


def test_long_stop() -> None:
    engine = DetectorEngine(DetectConfig(vehicle=VehicleConfig(long_stop_s=300)))
    out = []
    for i in range(12):
        v = {"lat": 39.7 + 0.00001 * (i % 2), "lon": 140.1, "speed": 0.0}
        out += engine.feed([reading("vehicle", "plow1", i * 60, **v)], {})
    out += engine.feed([reading("vehicle", "plow1", 800, lat=39.71, lon=140.1, speed=25.0)], {})
    got = [(d.active, d.ts) for d in out if d.kind == "vehicle_long_stop"]
    assert got == [(True, at(300)), (False, at(800))]


def test_a_late_fix_does_not_make_the_position_stale() -> None:
    """A batch the detector tier applied late brings a fix older than the vehicle's
    newest; taken as the last fix, it made the next tick call a moving bus stale."""
    engine = DetectorEngine(DetectConfig(vehicle=VehicleConfig(stale_s=60)))
    for t in (0, 30, 60, 90, 10):  # the 10 s fix arrives last
        engine.feed([reading("vehicle", "bus1", t, lat=39.7, lon=140.1, speed=10.0)], {})
    assert "vehicle_stale" not in kinds(engine.tick(at(100)))
