"""The staff API end to end inside one process: Batch -> detectors -> alerts -> HTTP,
devices and series answered from the real SQLite store and from a real InfluxDB. Every
test runs with the relational store on SQLite and on PostgreSQL (``db_url``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.api.auth import Role, create_token
from cloud.service import CloudService
from cloud.store import init_db
from tests.cloud.api.conftest import bearer, make_service
from tests.cloud.api.data import flood_batch, seed_flood_device, store_batch
from tests.servers import Influx

# recent enough for InfluxDB's 90-day raw retention; aligned so windows split evenly
_DAY_AGO = datetime.now(UTC) - timedelta(days=1)
T0 = _DAY_AGO.replace(minute=_DAY_AGO.minute // 10 * 10, second=0, microsecond=0)


@pytest.fixture
def service(tmp_path: Path, db_url: str) -> Iterator[CloudService]:
    svc = make_service(tmp_path, db_url=db_url)
    yield svc
    svc.stop()


def test_vertical_slice_batch_to_alert_ack_and_auto_resolve(
    service: CloudService, client: TestClient, tokens: dict[Role, str]
) -> None:
    viewer, operator = bearer(tokens[Role.VIEWER]), bearer(tokens[Role.OPERATOR])
    seed_flood_device(service, "fl-vs-1", T0)  # depth 2 -> 22 cm: caution, then warning
    r = client.get("/alerts", params={"kind": "flood_stage"}, headers=viewer)
    assert r.status_code == 200, r.text
    [alert] = r.json()
    assert alert["device_id"] == "fl-vs-1" and alert["state"] == "open"
    assert alert["severity"] == "Severe" and alert["extra"]["stage"] == "warning"
    assert alert["site"] == "underpass-1" and alert["area"] == "中通"
    assert alert["district"] == "central" and alert["public"] is True

    # filters
    assert (
        client.get(
            "/alerts", params={"severity": "Minor", "kind": "flood_stage"}, headers=viewer
        ).json()
        == []
    )
    active = client.get("/alerts", params={"active": True, "state": "open"}, headers=viewer)
    assert alert["id"] in {a["id"] for a in active.json()}

    # ack by an operator: recorded with the token's name
    r = client.post(
        f"/alerts/{alert['id']}/ack", json={"note": "crew on the way"}, headers=operator
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "acknowledged" and r.json()["acknowledged_by"] == "t-operator"
    assert client.post(f"/alerts/{alert['id']}/ack", headers=operator).status_code == 409
    assert client.post("/alerts/al-missing/ack", headers=operator).status_code == 404

    # water recedes: the condition clears, the hold-off (60 s here) resolves the alert
    down = flood_batch("gw-test", 1, "fl-vs-1", T0 + timedelta(minutes=5), [3.0, 2.0, 1.0])
    store_batch(service, down)
    cleared_at = T0 + timedelta(minutes=8)
    service.handle_batch(down, now=cleared_at)
    assert client.get(f"/alerts/{alert['id']}", headers=viewer).json()["state"] == "acknowledged"
    service.tick(cleared_at + timedelta(seconds=30))
    assert client.get(f"/alerts/{alert['id']}", headers=viewer).json()["state"] == "acknowledged"
    service.tick(cleared_at + timedelta(seconds=61))
    detail = client.get(f"/alerts/{alert['id']}", headers=viewer).json()
    assert detail["state"] == "resolved" and detail["resolved_at"] is not None
    trail = [(e["action"], e["actor"]) for e in detail["events"]]
    assert trail == [
        ("open", "system"),
        ("update", "system"),
        ("ack", "t-operator"),
        ("resolve", "system"),
    ]
    resolved = client.get(
        "/alerts", params={"state": "resolved", "kind": "flood_stage"}, headers=viewer
    ).json()
    assert [a["id"] for a in resolved] == [alert["id"]]


def test_manual_resolve_by_operator(
    service: CloudService, client: TestClient, tokens: dict[Role, str]
) -> None:
    seed_flood_device(service, "fl-mr-1", T0)
    [alert] = service.alerts.query(kind="flood_stage")
    r = client.post(f"/alerts/{alert.alert.id}/resolve", headers=bearer(tokens[Role.OPERATOR]))
    assert r.status_code == 200 and r.json()["state"] == "resolved"
    again = client.post(f"/alerts/{alert.alert.id}/resolve", headers=bearer(tokens[Role.ADMIN]))
    assert again.status_code == 409 and "resolved" in again.json()["detail"]


def test_devices_gateways_latest_and_series_from_sqlite(
    service: CloudService, client: TestClient, tokens: dict[Role, str]
) -> None:
    _check_devices_and_series(service, client, bearer(tokens[Role.VIEWER]))


@pytest.fixture
def influx_service(tmp_path: Path, influx: Influx, influx_db: str) -> Iterator[CloudService]:
    url = f"influx+http://127.0.0.1:{influx.port}/{influx_db}"
    init_db(url)
    svc = make_service(tmp_path, store_url=url)
    yield svc
    svc.stop()


def test_devices_gateways_latest_and_series_from_influxdb(
    influx_service: CloudService, influx: Influx, influx_db: str
) -> None:
    token = create_token(influx_service.sessionmaker, name="v", role=Role.VIEWER)
    with TestClient(create_app(influx_service, extra_routers=[])) as client:
        _check_devices_and_series(influx_service, client, bearer(token))
    # the alert lifecycle wrote the `alert` measurement (contract I) to the same database
    result = influx.query('SELECT "state", "alert_id" FROM "alert"', influx_db)
    states = [row[1] for row in result["results"][0]["series"][0]["values"]]
    assert "open" in states


def _check_devices_and_series(
    service: CloudService, client: TestClient, viewer: dict[str, str]
) -> None:
    seed_flood_device(service, "fl-ds-1", T0)
    devices = client.get("/devices", headers=viewer).json()
    assert [d["device_id"] for d in devices] == ["fl-ds-1"]
    assert devices[0]["gateway_id"] == "gw-test" and devices[0]["kind"] == "flood_sensor"
    assert client.get("/devices", params={"kind": "vehicle"}, headers=viewer).json() == []
    assert client.get("/devices/fl-ds-1", headers=viewer).json()["site"] == "underpass-1"
    assert client.get("/devices/nope", headers=viewer).status_code == 404
    assert client.get("/devices/nope/latest", headers=viewer).status_code == 404

    latest = client.get("/devices/fl-ds-1/latest", headers=viewer)
    assert latest.status_code == 200, latest.text
    fields = latest.json()["fields"]
    assert set(fields) == {"depth", "rain_intensity"}  # not the `alert` measurement's fields
    assert fields["depth"]["value"] == 22.0 and fields["rain_intensity"]["value"] == 5.0
    assert datetime.fromisoformat(fields["depth"]["ts"]) == T0 + timedelta(minutes=4)

    gateways = client.get("/gateways", headers=viewer).json()
    assert [g["gateway_id"] for g in gateways] == ["gw-test"]

    window = {
        "device": "fl-ds-1",
        "field": "depth",
        "start": T0.isoformat(),
        "end": (T0 + timedelta(minutes=10)).isoformat(),
    }
    raw = client.get("/series", params=window, headers=viewer)
    assert raw.status_code == 200, raw.text
    assert [p["value"] for p in raw.json()["points"]] == [2.0, 4.0, 12.0, 14.0, 22.0]
    agg = client.get(
        "/series", params={**window, "window": "2m", "aggregate": "max"}, headers=viewer
    ).json()
    assert [p["value"] for p in agg["points"]] == [4.0, 14.0, 22.0]
    assert agg["aggregate"] == "max" and agg["window"] == "2m"
    mean = client.get("/series", params={**window, "window": "10m"}, headers=viewer).json()
    assert [p["value"] for p in mean["points"]] == [pytest.approx(10.8)]

    def error(params: dict[str, str]) -> tuple[int, str]:
        r = client.get("/series", params={**window, **params}, headers=viewer)
        loc = r.json()["detail"][0]["loc"] if r.status_code == 422 else []
        return r.status_code, loc[-1] if loc else ""

    assert error({"window": "5x"}) == (422, "window")
    assert error({"window": "0s"}) == (422, "window")
    assert error({"window": "1s", "start": "2020-01-01T00:00:00Z"}) == (422, "window")
    assert error({"aggregate": "median", "window": "1m"}) == (422, "aggregate")
    assert error({"start": window["end"], "end": window["start"]}) == (422, "start")
    assert error({"field": "speed"}) == (422, "field")
    assert error({"start": T0.replace(tzinfo=None).isoformat()}) == (422, "start")  # no offset
    assert error({"start": "1900-01-01T00:00:00Z"}) == (422, "start")
    assert error({"start": "0001-01-01T00:00:00+14:00"}) == (422, "start")  # no UTC equivalent
    assert error({"end": "9999-12-31T23:59:59-14:00"}) == (422, "end")
    assert error({"start": (T0 - timedelta(days=8)).isoformat()}) == (422, "window")  # raw > 7 days


def test_maintenance_crud_and_silence(
    service: CloudService, client: TestClient, tokens: dict[Role, str]
) -> None:
    operator, viewer = bearer(tokens[Role.OPERATOR]), bearer(tokens[Role.VIEWER])
    now = datetime.now(UTC)
    body = {
        "site": "underpass-1",
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
        "reason": "pump overhaul",
    }
    r = client.post("/maintenance", json=body, headers=operator)
    assert r.status_code == 201, r.text
    window = r.json()
    assert window["created_by"] == "t-operator" and window["in_force"] is True

    # the site's flood sensor rises, but the window silences it
    seed_flood_device(service, "fl-mw-1", now - timedelta(minutes=5))
    assert client.get("/alerts", headers=viewer).json() == []

    listed = client.get("/maintenance", headers=viewer).json()
    assert [w["id"] for w in listed] == [window["id"]]
    patched = client.patch(
        f"/maintenance/{window['id']}", json={"reason": "pump + valve"}, headers=operator
    ).json()
    assert patched["reason"] == "pump + valve" and patched["updated_by"] == "t-operator"
    bad = client.patch(
        f"/maintenance/{window['id']}",
        json={"ends_at": (now - timedelta(hours=1)).isoformat()},
        headers=operator,
    )
    assert bad.status_code == 422
    assert client.get("/maintenance/999", headers=viewer).status_code == 404

    # cancelling lifts the silence: the condition still holds, so the alert opens now
    r = client.delete(f"/maintenance/{window['id']}", headers=operator)
    assert r.status_code == 200 and r.json()["cancelled_by"] == "t-operator"
    service.tick(datetime.now(UTC))
    kinds = {a["kind"] for a in client.get("/alerts", headers=viewer).json()}
    assert "flood_stage" in kinds
    assert client.get("/maintenance", headers=viewer).json() == []
    everything = client.get("/maintenance", params={"include_cancelled": True}, headers=viewer)
    assert len(everything.json()) == 1

    for wrong in (
        {**body, "site": None},
        {**body, "ends_at": body["starts_at"]},
        {**body, "extra": 1},
        {**body, "starts_at": "2026-06-01T00:00:00"},
    ):
        assert client.post("/maintenance", json=wrong, headers=operator).status_code == 422


def test_store_down_shows_in_health_and_answers_503(tmp_path: Path) -> None:
    from tests.servers import free_port

    # nothing listens on this port: the store is down from the start
    svc = make_service(tmp_path, store_url=f"influx+http://127.0.0.1:{free_port()}/akita")
    try:
        token = create_token(svc.sessionmaker, name="v", role=Role.VIEWER)
        with TestClient(create_app(svc, extra_routers=[])) as client:
            r = client.get("/health")
            assert r.status_code == 503 and r.json()["store"]["ok"] is False
            assert r.json()["status"] == "degraded"
            latest = client.get("/devices/fl-1/latest", headers=bearer(token))
            assert latest.status_code == 503 and "store" in latest.json()["detail"]
            params = {"device": "fl-1", "field": "depth"}
            assert client.get("/series", params=params, headers=bearer(token)).status_code == 503
    finally:
        svc.stop()


def test_snapshot_for_the_demo(service: CloudService) -> None:
    seed_flood_device(service, "fl-sn-1", T0)
    snap = service.snapshot()
    assert snap["devices_total"] == 1 and snap["alerts_open"] == 2
    assert {a.kind for a in snap["recent_alerts"]} == {"flood_stage", "flood_rising"}
    assert snap["points_total"] == 0  # written by the test, not through the ingest
