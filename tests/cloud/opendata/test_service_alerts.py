"""ServiceAlerts: staff write them through the API (operator), the public feed
publishes the active ones, the validator finds no error in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.transit import gtfs_realtime_pb2

from cloud.api.auth import Role, create_token
from cloud.opendata.routes import OpendataConfig
from tests.cloud.opendata import rt_validator
from tests.cloud.opendata.conftest import running_opendata
from tests.cloud.opendata.corridor_feed import FEED_DIR

NOW = datetime(2026, 1, 20, 22, 0, tzinfo=UTC)  # 07:00 JST, a snowy January morning


def test_staff_alert_reaches_the_public_feed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AKITA_GTFS_STATIC", str(FEED_DIR))
    with running_opendata(tmp_path) as od:
        sm = od.service.sessionmaker
        operator = {"authorization": f"Bearer {create_token(sm, name='ops', role=Role.OPERATOR)}"}
        viewer = {"authorization": f"Bearer {create_token(sm, name='v', role=Role.VIEWER)}"}
        od.client.app.state.opendata = OpendataConfig(  # type: ignore[attr-defined]
            gtfs_static=FEED_DIR, cache_s=0, clock=lambda: NOW
        )
        body = {
            "header_ja": "大雪のため遅延",
            "description_ja": "R1・R2 系統は大雪のため 20 分程度遅れています。",
            "header_en": "Delays due to heavy snow",
            "cause": "WEATHER",
            "effect": "SIGNIFICANT_DELAYS",
            "route_ids": ["R1", "R2"],
            "active_from": (NOW - timedelta(hours=1)).isoformat(),
            "active_until": (NOW + timedelta(hours=5)).isoformat(),
        }
        assert od.client.post("/service-alerts", json=body, headers=viewer).status_code == 403
        assert od.client.post("/service-alerts", json=body).status_code == 401
        r = od.client.post("/service-alerts", json=body, headers=operator)
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["created_by"] == "ops"
        bad = od.client.post("/service-alerts", json={**body, "cause": "SNOW"}, headers=operator)
        assert bad.status_code == 422 and "cause: 'SNOW'" in bad.json()["detail"]
        unknown = od.client.post(
            "/service-alerts", json={**body, "route_ids": ["R9"]}, headers=operator
        )
        assert unknown.status_code == 422 and "route_ids: 'R9'" in unknown.json()["detail"]
        past = {**body, "active_until": (NOW - timedelta(minutes=1)).isoformat()}
        assert od.client.post("/service-alerts", json=past, headers=operator).status_code == 201

        r = od.client.get("/opendata/gtfs-rt/service-alerts.pb")
        assert r.status_code == 200 and 'rel="license"' in r.headers["link"]
        feed = gtfs_realtime_pb2.FeedMessage()
        feed.ParseFromString(r.content)
        (entity,) = feed.entity  # the one already over is not published
        alert = entity.alert
        assert {e.route_id for e in alert.informed_entity} == {"R1", "R2"}
        assert alert.cause == gtfs_realtime_pb2.Alert.WEATHER
        assert alert.effect == gtfs_realtime_pb2.Alert.SIGNIFICANT_DELAYS
        texts = {t.language: t.text for t in alert.header_text.translation}
        assert texts == {"ja": "大雪のため遅延", "en": "Delays due to heavy snow"}
        prepared = rt_validator.prepare(FEED_DIR, tmp_path / "v")
        rt_validator.assert_valid(
            rt_validator.findings(prepared, {"sa": feed}, NOW, tmp_path / "sa")
        )

        listed = od.client.get("/service-alerts", headers=viewer).json()
        assert [a["id"] for a in listed] == [created["id"], created["id"] + 1]
        gone = od.client.delete(f"/service-alerts/{created['id']}", headers=operator)
        assert gone.status_code == 204
        assert (
            od.client.delete(f"/service-alerts/{created['id']}", headers=operator).status_code
            == 404
        )
        feed.ParseFromString(od.client.get("/opendata/gtfs-rt/service-alerts.pb").content)
        assert len(feed.entity) == 0
