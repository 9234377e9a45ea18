"""Meter alerts in a running system: simulated households' uplinks through a real
Mosquitto, the LPWA worker into a real InfluxDB, and on through the cloud service's
detectors and alert lifecycle (the code path ``akita cloud lpwa`` runs)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.lpwa.detection import MeterDetection
from cloud.lpwa.worker import LpwaSettings, LpwaWorker
from cloud.service import CloudService
from cloud.settings import CloudSettings
from firmware_sim import meters as sim
from schemas import DeviceInfo, DeviceKind
from tests.cloud.lpwa.test_worker import NS, _handled, _Publisher
from tests.servers import Influx, Mosquitto, wait_for

HOUR = 3600
DAYS = 4


@pytest.fixture
def service(influx: Influx, influx_db: str, tmp_path: Path) -> Iterator[CloudService]:
    data = {
        "store": {"url": f"influx+http://127.0.0.1:{influx.port}/{influx_db}"},
        "database": {"url": f"sqlite:///{tmp_path}/akita.db"},
    }
    svc = CloudService(CloudSettings.from_mapping(data, source="test"))
    svc.store.init_db()  # type: ignore[attr-defined]
    yield svc
    svc.stop()


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[_Publisher]:
    p = _Publisher(mosquitto.port)
    yield p
    p.close()


def _households(start: int) -> list[sim.Meter]:
    # a household that leaks 20 L/h from the first hour, one that uses three times the
    # water without a leak, and one whose battery dies after 12 h (silent 3+ days by now)
    return [
        sim.Meter("a1c0ffee00000001", 0, 220.0, leak_lph=20.0, leak_start_s=start, label="leak"),
        sim.Meter("a1c0ffee00000002", 0, 660.0, label="heavy"),
        sim.Meter("a1c0ffee00000003", 0, 220.0, dead_at_s=start + 12 * HOUR, label="dead"),
    ]


def test_meter_alerts_are_raised_live(
    mosquitto: Mosquitto, service: CloudService, publisher: _Publisher
) -> None:
    start = (int(time.time()) // HOUR - DAYS * 24 - 1) * HOUR
    households = _households(start)
    kind = DeviceKind("water_meter")
    service.registry.provision(
        NS, [DeviceInfo(device_id=m.dev_eui, kind=kind, district="block-0") for m in households]
    )
    detection = MeterDetection(service)
    worker = LpwaWorker(
        LpwaSettings(broker_port=mosquitto.port, batch_time_s=0.05),
        service.store,
        service.registry,
        on_readings=detection.on_readings,
        on_tick=detection.on_tick,
    )
    worker.start()
    assert worker.wait_ready()
    events = sim.all_events(households, NS, start, DAYS, seed=5, triple=0.3, late=0.1)
    try:
        for e in events:
            publisher.publish(e.topic, e.payload)
        wait_for("every event handled", lambda: _handled(worker) == len(events), 30)
        wait_for("silent meter found", lambda: _kinds(service, "a1c0ffee00000003"), 10)
    finally:
        worker.stop()
    assert detection.failures == 0
    assert _kinds(service, "a1c0ffee00000001") == {"meter_leak"}
    assert _kinds(service, "a1c0ffee00000002") == set()  # uses more, never leaks
    assert _kinds(service, "a1c0ffee00000003") == {"device_offline"}
    leak = next(a for a in service.alerts.active() if a.kind == "meter_leak")
    assert "continuous use" in (leak.message or "")


def _kinds(service: CloudService, device: str) -> set[str]:
    return {a.kind for a in service.alerts.active() if a.device_id == device}
