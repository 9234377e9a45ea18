"""The static feed loader and its lifecycle: blank times at non-timepoint stops,
encodings, a feed that cannot be read (the service stays up, /health says why), a new
version picked up without a restart, and the feed's own licence wherever it is served."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from google.transit import gtfs_realtime_pb2

from cloud.errors import SettingsError
from cloud.opendata.gtfs_static import GtfsError, GtfsStatic, haversine_m
from cloud.opendata.licence import feed_licence
from cloud.opendata.routes import OpendataConfig
from cloud.settings import CloudSettings
from tests.cloud.opendata.conftest import running_opendata
from tests.cloud.opendata.corridor_feed import FEED_DIR, build, true_trips, write


def test_non_timepoint_stops_are_timed_by_distance() -> None:
    feed = GtfsStatic.load(FEED_DIR)
    assert feed.interpolated_stop_times > 1000
    trip = next(t for t in feed.trips_by_route["R1"] if t.trip_id == "R1-out-07:00")
    sts = trip.stop_times
    k = next(i for i, st in enumerate(sts) if st.interpolated)
    a, b, c = sts[k - 1], sts[k], sts[k + 1]
    assert not a.interpolated and not c.interpolated
    d_ab = haversine_m(a.lat, a.lon, b.lat, b.lon)
    d_bc = haversine_m(b.lat, b.lon, c.lat, c.lon)
    want = a.departure + (c.arrival - a.departure) * d_ab / (d_ab + d_bc)
    assert b.arrival == b.departure == pytest.approx(want, abs=1)
    # and close to what the bus really does (the true timetable has a dwell there)
    true = next(t for t in true_trips() if t.trip_id == trip.trip_id)
    assert abs(b.arrival - true.arr[k]) <= 30


def test_blank_time_at_the_first_stop_is_refused_with_its_line(tmp_path: Path) -> None:
    files = build()
    lines = files["stop_times.txt"].split("\r\n")
    cells = lines[1].split(",")
    cells[1] = cells[2] = ""
    lines[1] = ",".join(cells)
    files["stop_times.txt"] = "\r\n".join(lines)
    with pytest.raises(GtfsError, match=r"stop_times.txt line 2: trip 'R1-out-06:00' first"):
        GtfsStatic.load(write(tmp_path, files))


def test_utf8_with_bom_and_an_unknown_encoding(tmp_path: Path) -> None:
    bom = write(tmp_path / "bom", build(), encoding="utf-8-sig")
    feed = GtfsStatic.load(bom)
    assert feed.encoding == "utf-8-bom" and feed.routes["R2"].long_name == "秋田駅 - R2 終点"
    bad = write(tmp_path / "bad", build())
    (bad / "stops.txt").write_bytes(b"stop_id,stop_name\n\x80\xff\xfe,\x81\n")
    with pytest.raises(GtfsError, match=r"stops\.txt: encoding is neither UTF-8 nor CP932"):
        GtfsStatic.load(bad)


def test_unreadable_feed_keeps_the_service_up_and_a_new_version_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed_dir = tmp_path / "gtfs"
    feed_dir.mkdir()
    (feed_dir / "agency.txt").write_bytes("agency_id\n秋田".encode("cp932")[:-1])
    monkeypatch.setenv("AKITA_GTFS_STATIC", str(feed_dir))
    with running_opendata(tmp_path) as od:
        service = od.service
        health = od.client.get("/health").json()
        assert health["gtfs"]["ok"] is False
        assert "agency.txt" in health["gtfs"]["detail"]["error"]
        assert health["gtfs"]["detail"]["trip_matching"] is False
        assert health["status"] == "ok"  # buses are still published, without trips
        r = od.client.get("/opendata/gtfs-rt/vehicle-positions.pb")
        assert r.status_code == 200
        assert service.detectors.vehicle.routes == {}

        shutil.rmtree(feed_dir)
        shutil.copytree(FEED_DIR, feed_dir)
        service.gtfs.check_s = 0.0
        service.tick()
        health = od.client.get("/health").json()
        assert health["gtfs"]["ok"] is True, health["gtfs"]
        assert health["gtfs"]["detail"]["feed_version"] == "corridor-1"
        assert health["gtfs"]["detail"]["encoding"] == "utf-8"
        assert set(service.detectors.vehicle.routes) == {"R1", "R2", "R3", "R4"}
        # a broken next version: the good one stays, /health names the reason
        (feed_dir / "trips.txt").write_text("route_id,service_id,trip_id\nR9,x,t\n")
        service.tick()
        health = od.client.get("/health").json()
        assert health["gtfs"]["ok"] is False
        assert "trips.txt line 2: route_id 'R9'" in health["gtfs"]["detail"]["error"]
        assert health["gtfs"]["detail"]["feed_version"] == "corridor-1"


def test_the_feed_licence_is_shown_where_the_feed_is_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AKITA_GTFS_LICENCE", "CC-BY-SA-3.0")
    monkeypatch.setenv("AKITA_GTFS_ATTRIBUTION", "出典: 秋田回廊バス GTFS, CC BY-SA 3.0")
    with running_opendata(tmp_path) as od:
        od.client.app.state.opendata = OpendataConfig(gtfs_static=FEED_DIR)  # type: ignore[attr-defined]
        r = od.client.get("/opendata/gtfs/static.zip")
        assert r.status_code == 200
        assert (
            r.headers["link"] == '<https://creativecommons.org/licenses/by-sa/3.0/>; rel="license"'
        )
        index = od.client.get("/opendata/").json()
        (static,) = [d for d in index["datasets"] if d["id"] == "gtfs-static"]
        assert static["licence"] == "CC-BY-SA-3.0"
        assert static["attribution"] == "出典: 秋田回廊バス GTFS, CC BY-SA 3.0"
        for path in ("vehicle-positions", "trip-updates"):
            body = od.client.get(f"/opendata/gtfs-rt/{path}.pb?format=json").json()
            assert body["static_feed_licence"]["licence"] == "CC-BY-SA-3.0"
            assert body["licence"]["licence"] == "CC-BY-4.0"
    with pytest.raises(ValueError, match=r"AKITA_GTFS_LICENCE: 'Mine-1\.0' is not a known"):
        feed_licence("Mine-1.0")
    assert feed_licence("Mine-1.0", url="https://example.org/l").url == "https://example.org/l"


def test_the_feed_and_its_licence_come_from_the_opendata_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AKITA_GTFS_LICENCE", raising=False)
    monkeypatch.delenv("AKITA_GTFS_STATIC", raising=False)
    opendata = {
        "gtfs_static": str(FEED_DIR),
        "gtfs_licence": "CC-BY-SA-3.0",
        "gtfs_attribution": "出典: 秋田回廊バス GTFS, CC BY-SA 3.0",
    }
    with running_opendata(tmp_path, opendata=opendata) as od:
        assert od.service.gtfs.path == FEED_DIR
        r = od.client.get("/opendata/gtfs/static.zip")
        assert r.status_code == 200
        assert (
            r.headers["link"] == '<https://creativecommons.org/licenses/by-sa/3.0/>; rel="license"'
        )
        index = od.client.get("/opendata/").json()
        (static,) = [d for d in index["datasets"] if d["id"] == "gtfs-static"]
        assert static["attribution"] == opendata["gtfs_attribution"]
    with pytest.raises(SettingsError, match=r"opendata.gtfs_licence: 'Mine-1\.0' is not a known"):
        CloudSettings.from_mapping({"opendata": {"gtfs_licence": "Mine-1.0"}})


def test_trip_updates_endpoint_parses(tmp_path: Path) -> None:
    with running_opendata(tmp_path) as od:
        r = od.client.get("/opendata/gtfs-rt/trip-updates.pb")
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
        assert "license" in r.headers["link"] and r.headers["access-control-allow-origin"] == "*"
        feed = gtfs_realtime_pb2.FeedMessage()
        feed.ParseFromString(r.content)
        assert feed.header.incrementality == gtfs_realtime_pb2.FeedHeader.FULL_DATASET
