"""GTFS-Realtime VehiclePositions: parses with gtfs-realtime-bindings and holds the
simulated buses with their positions, fix times and route ids."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.transit import gtfs_realtime_pb2

from cloud.opendata.gtfs_make import build_feed
from cloud.opendata.gtfs_rt import VehicleFix, build_vehicle_positions
from cloud.opendata.gtfs_static import SAMPLE_FEED, GtfsError, GtfsStatic
from cloud.opendata.routes import OpendataConfig
from tests.cloud.opendata import rt_validator
from tests.cloud.opendata.conftest import OpenData
from tests.dashboards.scenario_data import Export, parse_ts

CLOCK = datetime(2026, 6, 1, 22, 0, tzinfo=UTC)  # 07:00 JST, buses in service


def expected_buses(ex: Export, at: datetime) -> dict[str, dict[str, tuple[datetime, str]]]:
    """Per bus, the last value of each field at or before ``at``, straight from the CSV."""
    out: dict[str, dict[str, tuple[datetime, str]]] = {}
    with ex.csv.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            ts = parse_ts(row["ts"])
            if row["device_id"].startswith("bus-") and ts <= at:
                out.setdefault(row["device_id"], {})[row["field"]] = (ts, row["value"])
    return out


def check_feed(feed: gtfs_realtime_pb2.FeedMessage, ex: Export, at: datetime) -> None:
    expected = expected_buses(ex, at)
    assert feed.header.incrementality == gtfs_realtime_pb2.FeedHeader.FULL_DATASET
    assert feed.header.gtfs_realtime_version == "2.0"
    assert feed.header.timestamp == int(at.timestamp())
    buses = [d.device_id for d in ex.devices if d.vehicle_type == "bus"]
    assert sorted(e.id for e in feed.entity) == sorted(expected) == sorted(buses)
    static = GtfsStatic.load(SAMPLE_FEED)
    for e in feed.entity:
        want = expected[e.id]
        vp = e.vehicle
        assert vp.vehicle.id == e.id
        # Position.latitude/longitude are float32 in gtfs-realtime.proto: ~1.5e-5° at 140°E
        assert vp.position.latitude == pytest.approx(float(want["lat"][1]), abs=2e-5)
        assert vp.position.longitude == pytest.approx(float(want["lon"][1]), abs=2e-5)
        assert vp.timestamp == int(want["lat"][0].timestamp())
        assert vp.position.speed == pytest.approx(float(want["speed"][1]) / 3.6, abs=1e-4)
        assert vp.position.bearing == pytest.approx(float(want["heading"][1]), abs=1e-3)
        route = want["route_id"][1]
        assert vp.trip.route_id == route
        # in service: every bus is matched to a trip of its own route, one bus per instance
        trip_ids = {t.trip_id for t in static.trips_by_route[route]}
        assert vp.trip.trip_id in trip_ids
        assert vp.trip.start_date == "20260602"
        # the sample feed is frequency-based with exact_times=0: UNSCHEDULED, as the spec says
        assert vp.trip.schedule_relationship == gtfs_realtime_pb2.TripDescriptor.UNSCHEDULED
    instances = [(e.vehicle.trip.trip_id, e.vehicle.trip.start_time) for e in feed.entity]
    assert len(set(instances)) == len(instances)


def test_feed_from_the_store_parses_and_holds_the_buses(
    opendata: OpenData, demo_export: Export, tmp_path: Path
) -> None:
    opendata.loader.register(demo_export)
    opendata.loader.readings(demo_export, lines=False, kinds={"vehicle"}, until=CLOCK)
    opendata.client.app.state.opendata = OpendataConfig(  # type: ignore[attr-defined]
        gtfs_static=SAMPLE_FEED, cache_s=5, clock=lambda: CLOCK
    )
    r = opendata.client.get("/opendata/gtfs-rt/vehicle-positions.pb")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-protobuf"
    assert "license" in r.headers["link"] and r.headers["access-control-allow-origin"] == "*"
    assert "max-age=5" in r.headers["cache-control"]
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.ParseFromString(r.content)
    check_feed(feed, demo_export, CLOCK)

    tu = gtfs_realtime_pb2.FeedMessage()
    tu.ParseFromString(opendata.client.get("/opendata/gtfs-rt/trip-updates.pb").content)
    assert {e.trip_update.vehicle.id for e in tu.entity} <= {e.id for e in feed.entity}
    prepared = rt_validator.prepare(SAMPLE_FEED, tmp_path)
    found = rt_validator.findings(prepared, {"vp": feed, "tu": tu}, CLOCK, tmp_path / "rt")
    rt_validator.assert_valid(found)

    debug = opendata.client.get("/opendata/gtfs-rt/vehicle-positions.pb?format=json").json()
    assert debug["licence"]["licence"] == "CC-BY-4.0"
    assert {e["id"] for e in debug["feed"]["entity"]} == {e.id for e in feed.entity}
    assert debug["feed"]["header"]["incrementality"] == "FULL_DATASET"


def test_feed_is_cached_for_a_few_seconds(opendata: OpenData, demo_export: Export) -> None:
    opendata.loader.register(demo_export)
    opendata.loader.readings(demo_export, lines=False, kinds={"vehicle"}, until=CLOCK)
    later = CLOCK + timedelta(minutes=2)
    clock = [CLOCK]
    opendata.client.app.state.opendata = OpendataConfig(  # type: ignore[attr-defined]
        gtfs_static=SAMPLE_FEED, cache_s=3600, clock=lambda: clock[0]
    )
    first = opendata.client.get("/opendata/gtfs-rt/vehicle-positions.pb").content
    opendata.loader.readings(demo_export, lines=False, kinds={"vehicle"}, until=later)
    clock[0] = later
    assert opendata.client.get("/opendata/gtfs-rt/vehicle-positions.pb").content == first
    opendata.client.app.state.opendata_cache = None  # type: ignore[attr-defined]
    fresh = gtfs_realtime_pb2.FeedMessage()
    fresh.ParseFromString(opendata.client.get("/opendata/gtfs-rt/vehicle-positions.pb").content)
    check_feed(fresh, demo_export, later)


def test_builder_without_static_feed_passes_reported_route() -> None:
    at = datetime(2026, 6, 2, 3, 0, tzinfo=UTC)
    fix = VehicleFix("bus-9", 39.72, 140.13, at, speed_kmh=36.0, heading=90.0, route_id="r-x")
    feed = build_vehicle_positions([fix], now=at)
    (e,) = feed.entity
    assert e.vehicle.trip.route_id == "r-x" and not e.vehicle.trip.trip_id
    assert e.vehicle.position.speed == pytest.approx(10.0)
    # a route the configured static feed does not know gets no trip descriptor at all
    feed = build_vehicle_positions([fix], now=at, static=GtfsStatic.load(SAMPLE_FEED))
    assert not feed.entity[0].vehicle.HasField("trip")


def test_sample_static_feed_is_built_from_the_simulated_routes(demo_export: Export) -> None:
    built = build_feed(demo_export.devices_json())
    committed = {p.name: p.read_text(encoding="utf-8") for p in SAMPLE_FEED.glob("*.txt")}
    assert committed == built, "regenerate with python -m cloud.opendata.gtfs_make"


def test_static_feed_errors_name_the_file_and_field(tmp_path: Path) -> None:
    for p in SAMPLE_FEED.glob("*.txt"):
        (tmp_path / p.name).write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    times = tmp_path / "stop_times.txt"
    times.write_text(times.read_text().replace("06:00:00", "6h", 1))
    with pytest.raises(GtfsError, match=r"stop_times.txt line 2: time '6h'"):
        GtfsStatic.load(tmp_path)
    (tmp_path / "agency.txt").unlink()
    with pytest.raises(GtfsError, match=r"agency\.txt"):
        GtfsStatic.load(tmp_path)
