"""The whole cloud process on a real Mosquitto: meta + telemetry published over MQTT
are ingested, stored, detected and shown by ``GET /alerts``; ``/health`` follows the
broker going away and coming back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from cloud.api.app import create_app
from cloud.api.auth import Role, create_token
from cloud.service import CloudService
from schemas import topics
from schemas.codec import encode_batch, encode_model
from schemas.wire import DeviceInfo, GatewayMeta
from tests.cloud.api.conftest import bearer, make_service
from tests.cloud.api.data import flood_batch
from tests.servers import Mosquitto, wait_for


@pytest.fixture
def running(tmp_path: Path, mosquitto: Mosquitto, unique: str) -> Iterator[CloudService]:
    svc = make_service(
        tmp_path,
        ingest={
            "broker_host": "127.0.0.1",
            "broker_port": mosquitto.port,
            "client_id": f"ingest-{unique}",
            "group": f"g{unique}",
        },
    )
    svc.start()
    yield svc
    svc.stop()


def test_mqtt_to_alert_through_the_api(
    running: CloudService, mosquitto: Mosquitto, unique: str
) -> None:
    gw, dev = f"gw-{unique}", f"fl-{unique}"
    token = create_token(running.sessionmaker, name="ops", role=Role.VIEWER)
    client = TestClient(create_app(running, extra_routers=[]))
    wait_for("broker connection", lambda: client.get("/health").json()["broker"]["ok"] is True)

    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{unique}")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    try:
        info = DeviceInfo(device_id=dev, kind="flood_sensor", site="underpass-9")  # type: ignore[arg-type]
        meta = GatewayMeta(gateway_id=gw, ts=datetime.now(UTC), devices=[info])
        running.registry.provision(gw, [info])  # staff: akita cloud device add
        pub.publish(topics.meta(gw), encode_model(meta), qos=1, retain=True).wait_for_publish()
        wait_for("device registered", lambda: dev in running.registry.devices())
        start = datetime.now(UTC) - timedelta(minutes=5)
        batch = flood_batch(gw, 0, dev, start, [1.0, 5.0, 11.0, 13.0])
        pub.publish(topics.telemetry(gw), encode_batch(batch), qos=1).wait_for_publish()

        def alert_listed() -> bool:
            alerts = client.get("/alerts", params={"device": dev}, headers=bearer(token)).json()
            return any(a["kind"] == "flood_stage" for a in alerts)

        wait_for("flood_stage alert", alert_listed)
        latest = client.get(f"/devices/{dev}/latest", headers=bearer(token)).json()
        assert latest["fields"]["depth"]["value"] == 13.0
        [alert] = [
            a
            for a in client.get("/alerts", params={"device": dev}, headers=bearer(token)).json()
            if a["kind"] == "flood_stage"
        ]
        assert alert["extra"]["stage"] == "caution" and alert["site"] == "underpass-9"
    finally:
        pub.loop_stop()
        pub.disconnect()

    mosquitto.stop()
    wait_for("outage seen", lambda: client.get("/health").status_code == 503)
    assert client.get("/health").json()["broker"]["ok"] is False
    mosquitto.start()
    wait_for("recovery seen", lambda: client.get("/health").status_code == 200)
