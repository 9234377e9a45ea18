"""The vertical slice, for real: simulated Modbus TCP water-block meters -> edge agent ->
Mosquitto -> cloud ingest -> InfluxDB 1.x, with a threshold rule raising an alert that the
staff API returns.

Every reading the edge published (recorded by an independent MQTT subscriber) must be in
InfluxDB with exactly the same values, read back with InfluxQL.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.api.auth import create_token
from cloud.provisioning import read_device_list
from cloud.service import CloudService
from cloud.settings import CloudSettings
from cloud.store import init_db
from edge.agent import Agent
from edge.config import load_config
from firmware_sim.fleet import start_fleet
from schemas import decode_batch, topics
from tests.servers import Influx, Mosquitto

FIELDS = ("flow", "pressure", "totaliser")


class Recorder:
    """An independent subscriber: what the gateway really put on the wire."""

    def __init__(self, port: int) -> None:
        self.readings: dict[tuple[str, int], dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"rec-{uuid.uuid4()}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topics.subscription(topics.Channel.TELEMETRY), qos=1)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        batch = decode_batch(msg.payload)
        with self._lock:
            for r in batch.readings:
                if r.kind == "water_block":
                    key = (r.device_id, int(r.ts.timestamp() * 1000))
                    self.readings[key] = r.values.present()

    def snapshot(self) -> dict[tuple[str, int], dict[str, Any]]:
        with self._lock:
            return dict(self.readings)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _settings(tmp: Path, mosquitto: Mosquitto, influx: Influx, db: str) -> CloudSettings:
    host = influx.url.removeprefix("http://")
    return CloudSettings.from_mapping(
        {
            "environment": "development",
            "ingest": {
                "broker_host": "127.0.0.1",
                "broker_port": mosquitto.port,
                "client_id": f"ingest-{uuid.uuid4().hex[:8]}",
            },
            "store": {"url": f"influx+http://{host}/{db}"},
            "database": {"url": f"sqlite:///{tmp / 'akita.db'}"},
            # the slice's one threshold rule: any normal city pressure (0.2-0.6 MPa) is "high"
            "detect": {"water": {"pressure_high": 0.05, "pressure_hysteresis": 0.01}},
        },
        source="e2e",
    )


def _influx_rows(influx: Influx, db: str) -> dict[tuple[str, int], dict[str, Any]]:
    q = 'SELECT "flow", "pressure", "totaliser", "device" FROM "water_block"'
    result = influx.query(q, db=db)["results"][0]
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for series in result.get("series", []):
        cols = series["columns"]
        for values in series["values"]:
            row = dict(zip(cols, values, strict=True))
            fields = {f: row[f] for f in FIELDS if row[f] is not None}
            rows[(row["device"], int(row["time"]))] = fields
    return rows


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_modbus_sim_to_edge_to_mosquitto_to_influx_and_api(
    tmp_path: Path, mosquitto: Mosquitto, influx: Influx, influx_db: str
) -> None:
    settings = _settings(tmp_path, mosquitto, influx, influx_db)
    init_db(settings.store.url)  # what `akita cloud init-db` does: database, RPs, CQs
    service = CloudService(settings)
    service.start()
    recorder = Recorder(mosquitto.port)
    try:
        asyncio.run(_run_edge(tmp_path, mosquitto, recorder, service))
        sent = recorder.snapshot()
        assert len({dev for dev, _ in sent}) >= 2, "expected several water blocks"
        assert len(sent) >= 6

        _wait(lambda: len(_influx_rows(influx, influx_db)) >= len(sent), 30, "influx rows")
        stored = _influx_rows(influx, influx_db)
        assert set(stored) == set(sent)
        for key, values in sent.items():
            assert stored[key] == values, f"{key}: stored {stored[key]} != sent {values}"

        _wait(lambda: service.alerts.active(), 20, "an alert")
        token = create_token(service.sessionmaker, name="e2e", role="viewer")
        with TestClient(create_app(service)) as api:
            alerts = api.get("/alerts", headers={"Authorization": f"Bearer {token}"}).json()
            latest = api.get(
                f"/devices/{next(iter(sent))[0]}/latest",
                headers={"Authorization": f"Bearer {token}"},
            )
        items = alerts["items"] if isinstance(alerts, dict) else alerts
        high = [a for a in items if a["kind"] == "pressure_high"]
        assert high, f"no pressure_high alert in {json.dumps(items)[:500]}"
        assert high[0]["device_id"].startswith("wb-")
        assert latest.status_code == 200
        assert "pressure" in json.dumps(latest.json())
    finally:
        recorder.close()
        service.stop()


async def _run_edge(
    tmp: Path, mosquitto: Mosquitto, recorder: Recorder, service: CloudService
) -> None:
    fleet = await start_fleet(
        "normal_week",
        scale="small",
        speed=60,
        workdir=tmp / "sim",
        mqtt_host="127.0.0.1",
        mqtt_port=mosquitto.port,
        spool_dir=tmp / "spool",
    )
    try:
        full = load_config(fleet.edge_configs[0])
        service.registry.provision(*read_device_list(fleet.edge_configs[0]))  # device import
        water = [d for d in full.devices if d.kind == "water_block"]
        config = full.model_copy(update={"devices": water})
        stop = asyncio.Event()
        task = asyncio.create_task(Agent(config).run(stop))
        deadline = time.monotonic() + 60
        # three polls of every water block (poll interval 60 sim-s = 1 s real at speed 60)
        while time.monotonic() < deadline:
            per_dev: dict[str, int] = {}
            for dev, _ts in recorder.snapshot():
                per_dev[dev] = per_dev.get(dev, 0) + 1
            if len(per_dev) == len(water) and min(per_dev.values()) >= 3:
                break
            await asyncio.sleep(0.2)
        stop.set()
        await asyncio.wait_for(task, timeout=20)
    finally:
        await fleet.stop()


def test_timestamps_are_utc_milliseconds() -> None:
    # guards the key used above: InfluxDB is written with precision=ms
    ts = datetime.fromisoformat("2026-06-01T00:00:00.123+00:00")
    assert int(ts.timestamp() * 1000) == 1780272000123
