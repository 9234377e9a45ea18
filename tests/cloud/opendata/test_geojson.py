"""Snowplows, cleared segments and FloodMonitoring status, from the real service's store
loaded with simulator output; licence metadata on every output."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cloud.ingest.encode import Encoder
from cloud.opendata.geojson import cleared_segments
from cloud.opendata.positions import TrackPoint
from cloud.opendata.routes import OpendataConfig
from firmware_sim.scenarios import build
from schemas import DeviceKind, VehicleType, VehicleValues
from tests.cloud.opendata.conftest import OpenData, running_opendata
from tests.dashboards.scenario_data import Export, parse_ts

STORM = datetime(2026, 6, 1, 15, 50, tzinfo=UTC)  # 00:50 JST: the demo storm's peak hour


def _latest(ex: Export, kind: str, at: datetime) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    with ex.csv.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["kind"] == kind and parse_ts(row["ts"]) <= at:
                out.setdefault(row["device_id"], {})[row["field"]] = row["value"]
    return out


def _pin(od: OpenData, at: datetime) -> None:
    od.client.app.state.opendata = OpendataConfig(cache_s=5, clock=lambda: at)  # type: ignore[attr-defined]


def test_flood_monitoring_geojson_and_csv(tmp_path: Path, demo_export: Export) -> None:
    sites = demo_export.facts
    with running_opendata(tmp_path, detect={"sites": sites}) as od:
        od.loader.register(demo_export)
        od.loader.readings(demo_export, lines=False, kinds={"flood_sensor"}, until=STORM)
        _pin(od, STORM)
        r = od.client.get("/opendata/flood-monitoring.geojson")
        assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
        body = r.json()
        assert body["licence"] == "CC-BY-4.0" and "秋田市" in body["attribution"]
        latest = _latest(demo_export, "flood_sensor", STORM)
        sensors = {d.device_id: d for d in demo_export.devices if d.kind == "flood_sensor"}
        assert {f["properties"]["stationID"] for f in body["features"]} == set(sensors)
        statuses = set()
        for f in body["features"]:
            p = f["properties"]
            dev = p["stationID"]
            assert p["type"] == "FloodMonitoring"
            assert p["id"] == f"urn:ngsi-ld:FloodMonitoring:akita:{dev}"
            assert f["geometry"]["coordinates"] == [sensors[dev].lon, sensors[dev].lat]
            depth = float(latest[dev]["depth"])
            assert p["currentLevel"] == depth
            stages = sites[dev]["stages_cm"]  # {"caution": cm, "warning": cm, "danger": cm}
            caution, warning, danger = stages["caution"], stages["warning"], stages["danger"]
            assert (p["alertLevel"], p["warningLevel"], p["dangerLevel"]) == (
                caution,
                warning,
                danger,
            )
            want = sum(depth >= s for s in (caution, warning, danger))
            assert p["floodLevelStatus"] == ("Normal", "Caution", "Warning", "Danger")[want]
            statuses.add(p["floodLevelStatus"])
        assert statuses - {"Normal"}, "the storm must put at least one sensor above a stage"

        r = od.client.get("/opendata/flood-monitoring.csv")
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert len(rows) == len(sensors)
        by_id = {row["stationID"]: row for row in rows}
        for f in body["features"]:
            row = by_id[f["properties"]["stationID"]]
            assert row["floodLevelStatus"] == f["properties"]["floodLevelStatus"]
            assert float(row["currentLevel"]) == f["properties"]["currentLevel"]
            assert row["license"] == "https://creativecommons.org/licenses/by/4.0/"


def test_snowplow_positions(opendata: OpenData, demo_export: Export) -> None:
    at = demo_export.start + timedelta(hours=1)
    opendata.loader.register(demo_export)
    opendata.loader.readings(demo_export, lines=False, kinds={"vehicle"}, until=at)
    _pin(opendata, at)
    body = opendata.client.get("/opendata/snowplows.geojson").json()
    assert body["licence"] == "CC-BY-4.0"
    latest = _latest(demo_export, "vehicle", at)
    plows = {d.device_id for d in demo_export.devices if d.vehicle_type == VehicleType.SNOWPLOW}
    assert {f["id"] for f in body["features"]} == plows
    for f in body["features"]:
        want = latest[f["id"]]
        assert f["geometry"]["coordinates"] == [float(want["lon"]), float(want["lat"])]
        assert f["properties"]["plow_down"] is (want["plow_down"] == "true")


def test_cleared_segments_follow_the_blade_down_track(opendata: OpenData) -> None:
    run = build("snowfall_snowplows")
    plows = run.plan.of_kind(DeviceKind.VEHICLE, VehicleType.SNOWPLOW)[:2]
    service = opendata.service
    service.registry.provision("gw-plows", [p.info for p in plows])
    enc = Encoder(service.registry)
    expected: dict[str, list[list[float]]] = {}
    end = 0.0
    for p in plows:
        w = p.model.dispatch[0]
        t = w.start - 120.0  # two minutes standing, blade up, then 20 minutes of work
        points = []
        while t < w.start + 20 * 60:
            values = p.model.sample(t)
            ts = datetime.fromtimestamp(t, UTC)
            points.append(
                enc.reading_point(p.id, "vehicle", "gw-plows", VehicleValues(**values), ts)
            )
            if values.get("plow_down") and values.get("fix"):
                expected.setdefault(p.id, []).append([values["lon"], values["lat"]])
            t += 30.0
        end = max(end, t)
        service.store.write(points)
    _pin(opendata, datetime.fromtimestamp(end, UTC))
    body = opendata.client.get("/opendata/snowplows/cleared-segments.geojson").json()
    assert body["licence"] == "CC-BY-4.0"
    got: dict[str, list[list[float]]] = {}
    for f in body["features"]:
        assert f["geometry"]["type"] == "LineString"
        assert f["properties"]["length_m"] > 0
        got.setdefault(f["properties"]["vehicle_id"], []).extend(f["geometry"]["coordinates"])
    assert set(got) == {p.id for p in plows}
    for dev, coords in got.items():
        # every blade-down fix is on a cleared segment, in order (a run may break at a
        # no-fix gap, never reorder)
        assert coords == expected[dev]


def test_cleared_segments_break_where_the_blade_lifts_or_fixes_stop() -> None:
    t0 = datetime(2026, 1, 15, 20, 0, tzinfo=UTC)

    def pt(s: float, lat: float, down: bool) -> TrackPoint:
        return TrackPoint(t0 + timedelta(seconds=s), lat, 140.1, down)

    track = [
        pt(0, 39.700, True),
        pt(30, 39.701, True),
        pt(60, 39.702, False),  # blade up
        pt(90, 39.703, True),
        pt(120, 39.704, True),
        pt(400, 39.705, True),  # no fix for > 60 s: the path between is unknown
        pt(430, 39.706, True),
    ]
    body = cleared_segments({"plow-1": track}, now=t0 + timedelta(hours=1))
    runs = [[c[1] for c in f["geometry"]["coordinates"]] for f in body["features"]]
    assert runs == [[39.700, 39.701], [39.703, 39.704], [39.705, 39.706]]


def test_index_lists_every_output_with_its_licence(opendata: OpenData, demo_export: Export) -> None:
    opendata.loader.register(demo_export)
    _pin(opendata, demo_export.start)
    index = opendata.client.get("/opendata/").json()
    assert index["licence_url"] == "https://creativecommons.org/licenses/by/4.0/"
    ids = {d["id"] for d in index["datasets"]}
    assert ids == {
        "gtfs-rt-vehicle-positions",
        "gtfs-rt-trip-updates",
        "gtfs-rt-service-alerts",
        "gtfs-static",
        "snowplows",
        "snowplow-cleared-segments",
        "flood-monitoring",
    }
    for d in index["datasets"]:
        assert d["licence"] == "CC-BY-4.0" and d["attribution"]
        for key in ("url", "debug_url", "csv_url", "static_feed"):
            if d.get(key):
                r = opendata.client.get(d[key])
                assert r.status_code == 200, d[key]
                assert 'rel="license"' in r.headers["link"]
    gazetteer = opendata.client.get("/opendata/sites.worldmap.json").json()
    flood = {d.device_id for d in demo_export.devices if d.kind == "flood_sensor"}
    assert flood <= {g["key"] for g in gazetteer}
