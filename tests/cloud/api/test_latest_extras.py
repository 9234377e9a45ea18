"""``GET /devices/{id}/latest`` lists a device's declared extra fields and its quality
flags, as the ingest stored them, from a real SQLite store and a real InfluxDB.

The TUF-2000M of ``deploy/edge/tuf2000m.toml`` is provisioned from that file (its
declared extras); two edge payloads go through the ingest's own message handler (the
wire check, ownership, the extra-field check against the declaration, the encoder) and
are written as the ingest worker writes them: the first with the fault bit set (the
flow sent as a flag, no number), the second with the fault cleared (the flow again and
``ok``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.api.auth import Role, create_token
from cloud.ingest.encode import Encoder
from cloud.ingest.handling import MessageHandler
from cloud.ingest.settings import IngestSettings
from cloud.metrics import Metrics
from cloud.provisioning import read_device_list
from cloud.service import CloudService
from cloud.store import init_db
from schemas import topics
from tests.cloud.api.conftest import bearer, make_service
from tests.servers import Influx

ROOT = Path(__file__).resolve().parents[3]
T0 = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
DEVICE = "wb-tuf-inlet"
EXTRA = {"totaliser_fraction": 0.5, "temperature_t1": 7.101, "temperature_t2": 5.5,
         "signal_quality": 85.0, "error_bits": 0.0, "fault_no_signal": False}  # fmt: skip
NO_SIGNAL = "device error fault_no_signal"


def _payload(gateway: str, seq: int, ts: datetime, values: dict, extra: dict, quality: dict
             ) -> bytes:  # fmt: skip
    reading: dict[str, Any] = {"device_id": DEVICE, "kind": "water_block", "ts": ts.isoformat(),
                               "values": values, "extra": extra}  # fmt: skip
    if quality:
        reading["quality"] = quality
    batch = {"v": 1, "gateway_id": gateway, "seq": seq, "sent_at": ts.isoformat(),
             "readings": [reading]}  # fmt: skip
    return json.dumps(batch).encode()


def _ingest(service: CloudService, gateway: str, payloads: list[bytes]) -> list[str]:
    """The ingest worker's steps for each message: handle, then write lines or points."""
    store = service.store
    fast = callable(getattr(store, "write_lines", None))
    dead: list[str] = []
    handler = MessageHandler(
        IngestSettings(), service.registry, Encoder(service.registry), Metrics(), fast=fast,
        detailed=True, now=lambda: (T0 + timedelta(minutes=5)).timestamp(),
        publish=lambda topic, body: dead.append(body.decode()),
    )  # fmt: skip
    for i, payload in enumerate(payloads):
        entry = handler.handle(i + 1, 1, topics.telemetry(gateway), payload)
        if fast:
            store.write_lines(b"\n".join(entry.lines))  # type: ignore[attr-defined]
        else:
            store.write(entry.points)
    return dead


def _check_latest(service: CloudService, client: TestClient) -> None:
    gateway, devices = read_device_list(ROOT / "deploy" / "edge" / "tuf2000m.toml")
    service.registry.provision(gateway, devices)
    faulty = {**EXTRA, "error_bits": 1.0, "fault_no_signal": True, "signal_quality": 3.0}
    dead = _ingest(service, gateway, [
        _payload(gateway, 1, T0, {"totaliser": 23.0}, faulty, {"flow": NO_SIGNAL}),
        _payload(gateway, 2, T0 + timedelta(minutes=1), {"flow": -0.8598, "totaliser": 23.0},
                 EXTRA, {"flow": "ok"}),
        # an extra its declaration does not allow is refused, the rest of the reading kept
        _payload(gateway, 3, T0 + timedelta(minutes=2), {"totaliser": 23.0},
                 {"signal_quality": 120.0}, {}),
    ])  # fmt: skip
    assert len(dead) == 1 and "extra.signal_quality: out of its declared range 0..99" in dead[0]
    token = create_token(service.sessionmaker, name="v", role=Role.VIEWER)
    r = client.get(f"/devices/{DEVICE}/latest", headers=bearer(token))
    assert r.status_code == 200, r.text
    fields = {k: v["value"] for k, v in r.json()["fields"].items()}
    times = {k: datetime.fromisoformat(v["ts"]) for k, v in r.json()["fields"].items()}
    assert fields == {"flow": -0.8598, "totaliser": 23.0, **EXTRA, "flow__quality": "ok"}
    assert times["flow__quality"] == times["flow"] == T0 + timedelta(minutes=1)
    assert times["totaliser"] == T0 + timedelta(minutes=2)  # the refused extra's reading
    assert times["signal_quality"] == T0 + timedelta(minutes=1)  # its last valid value


def test_latest_lists_extras_and_quality_flags_from_sqlite(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    try:
        with TestClient(create_app(service, extra_routers=[])) as client:
            _check_latest(service, client)
    finally:
        service.stop()


@pytest.fixture
def influx_service(tmp_path: Path, influx: Influx, influx_db: str) -> Iterator[CloudService]:
    url = f"influx+http://127.0.0.1:{influx.port}/{influx_db}"
    init_db(url)
    svc = make_service(tmp_path, store_url=url)
    yield svc
    svc.stop()


def test_latest_lists_extras_and_quality_flags_from_influxdb(
    influx_service: CloudService, influx: Influx, influx_db: str
) -> None:
    with TestClient(create_app(influx_service, extra_routers=[])) as client:
        _check_latest(influx_service, client)
    # while the fault bit was set the flow was stored as its flag only, never a number
    rows = influx.query(
        f'SELECT "flow", "flow__quality" FROM "water_block" WHERE device = \'{DEVICE}\'',
        influx_db,
    )["results"][0]["series"][0]["values"]
    assert [r[1:] for r in rows] == [[None, NO_SIGNAL], [-0.8598, "ok"]]
