"""The detector tier's partition worker (issue 17), on real Mosquitto and PostgreSQL.

- A burst that arrives while a turn is slow (the alert lifecycle waiting on the
  database) is applied in one turn, one alert transaction for all of it, not one per
  message: what made a burst of alerts hold every reading behind it for seconds.
- A turn that fails half-way (the database gone mid-alert) restarts the partition from
  its checkpoint; the broker redelivers, and the detection is made once, not lost.
- A batch held for a seq that never comes is released when its wait ends, by the
  partition's worker, not at the tier's next tick.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from cloud.db.models import AlertRow
from cloud.detect import handoff
from cloud.detect.tier import DetectorTier, Partition
from cloud.service import CloudService
from cloud.settings import CloudSettings
from schemas import Batch, DeviceInfo, DeviceKind, reading_adapter
from tests.e2e.topology import detector
from tests.servers import Mosquitto, wait_for

GATEWAY = "gw-turns"
SENSORS = [f"fs-turn-{i}" for i in range(20)]
FAST = {"heartbeat_s": 0.5, "lease_ttl_s": 5.0, "checkpoint_s": 1.0}
START = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def service(mosquitto: Mosquitto, pg_url: str, tmp_path: Any) -> Iterator[CloudService]:
    svc = _service(mosquitto, pg_url, tmp_path, **FAST)
    yield svc
    svc.stop()


@pytest.fixture
def no_tick(mosquitto: Mosquitto, pg_url: str, tmp_path: Any) -> Iterator[CloudService]:
    """The tier's tick never comes during a test: only the worker releases held batches."""
    svc = _service(mosquitto, pg_url, tmp_path, **FAST, tick_s=3600.0, reorder_s=0.5)
    yield svc
    svc.stop()


def _service(mosquitto: Mosquitto, pg_url: str, tmp_path: Any, **tier: Any) -> CloudService:
    settings = CloudSettings.from_mapping(
        {
            "environment": "test",
            "store": {"url": f"sqlite:///{tmp_path / 'series.db'}"},
            "database": {"url": pg_url},
            # the readings are an hour old: no offline alerts from the tick meanwhile
            "detect": {
                "common": {"offline_kinds": []},
                "sites": {d: {"stages_cm": [10, 20, 30]} for d in SENSORS},
            },
            "ingest": {"broker_host": "127.0.0.1", "broker_port": mosquitto.port},
            "commands": {"enabled": False},
        },
        source="test",
    )
    svc = detector(settings, "det-turns", 1, **tier)
    svc.registry.provision(
        GATEWAY, [DeviceInfo(device_id=d, kind=DeviceKind.FLOOD_SENSOR) for d in SENSORS]
    )
    return svc


def _payload(seq: int, *, flooded: set[str]) -> bytes:
    """Batch ``seq`` of the gateway: every sensor, 15 cm (its first stage) if flooded."""
    ts = START + timedelta(seconds=seq)
    readings = [
        reading_adapter.validate_python(
            {"device_id": d, "kind": "flood_sensor", "ts": ts,
             "values": {"depth": 15.0 if d in flooded else 1.0, "rain_intensity": 5.0}}
        )
        for d in SENSORS
    ]  # fmt: skip
    batch = Batch(gateway_id=GATEWAY, seq=seq, sent_at=ts, readings=readings)
    return handoff.encode(batch, readings, reset=False, stored_at=time.time())


class Publisher:
    def __init__(self, port: int) -> None:
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="turns-pub")
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def send(self, *payloads: bytes) -> None:
        infos = [self.c.publish(handoff.topic(0), p, qos=1) for p in payloads]
        for info in infos:
            info.wait_for_publish(10)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def _partition(tier: DetectorTier) -> Partition:
    wait_for("the partition is owned", lambda: 0 in tier.partitions, 20)
    return tier.partitions[0]


def _applied(tier: DetectorTier) -> int | None:
    part = tier.partitions.get(0)
    if part is None:
        return None
    with part.lock:
        return part.order.applied().get(GATEWAY)


def _subscribed(tier: DetectorTier, pub: Publisher) -> None:
    """Batch 0 (quiet) until the partition's session has it: subscribed from then on."""
    deadline = time.monotonic() + 20
    while _applied(tier) != 0:
        assert time.monotonic() < deadline, "the partition never read batch 0"
        pub.send(_payload(0, flooded=set()))
        time.sleep(0.3)


def _flood_alerts(service: CloudService) -> list[str]:
    with service.sessionmaker() as s:
        query = select(AlertRow.device_id).where(AlertRow.kind == "flood_stage")
        return sorted(s.scalars(query))


def test_a_burst_behind_a_slow_turn_is_applied_in_one_alert_transaction(
    service: CloudService, mosquitto: Mosquitto
) -> None:
    tier = service.tier
    assert tier is not None
    part = _partition(tier)
    pub = Publisher(mosquitto.port)
    try:
        _subscribed(tier, pub)
        calls: list[int] = []
        handle = service.alerts.handle

        def counted(detections: Any, now: datetime, **kw: Any) -> Any:
            calls.append(len(detections))
            return handle(detections, now, **kw)

        service.alerts.handle = counted  # type: ignore[method-assign]
        # each of batches 1..20 floods one more sensor: 20 alerts in 20 messages
        payloads = [_payload(i, flooded=set(SENSORS[:i])) for i in range(1, 21)]
        with part.lock:  # a slow turn: the worker cannot apply anything meanwhile
            pub.send(*payloads)
            wait_for("the burst waits in the inbox", lambda: len(part.inbox) == 20, 20)
        wait_for("every batch applied", lambda: _applied(tier) == 20, 30)
        wait_for("20 flood alerts", lambda: len(_flood_alerts(service)) == 20, 30)
    finally:
        pub.close()
    assert _flood_alerts(service) == sorted(SENSORS)
    assert len(calls) == 1, calls  # one turn, one alert transaction for the burst


def test_a_failed_turn_restarts_the_partition_from_its_checkpoint(
    service: CloudService, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    tier = service.tier
    assert tier is not None
    first = _partition(tier)
    pub = Publisher(mosquitto.port)
    caplog.set_level(logging.ERROR, logger="cloud.detect.tier")
    try:
        _subscribed(tier, pub)
        handle = service.alerts.handle
        failures: list[str] = []

        def fails_once(detections: Any, now: datetime, **kw: Any) -> Any:
            if not failures:
                failures.append("database gone")
                raise ConnectionError("database gone mid-alert")
            return handle(detections, now, **kw)

        service.alerts.handle = fails_once  # type: ignore[method-assign]
        pub.send(_payload(1, flooded={SENSORS[0]}))
        wait_for("the partition restarted", lambda: tier.partitions.get(0) not in (None, first))
        wait_for("batch 1 applied again", lambda: _applied(tier) == 1, 30)
        wait_for("the flood alert", lambda: _flood_alerts(service) != [], 30)
    finally:
        pub.close()
    assert failures == ["database gone"]
    assert _flood_alerts(service) == [SENSORS[0]]  # made once, after the redelivery
    assert any("detect_turn_failed partition=0" in r.getMessage() for r in caplog.records)


def test_a_batch_held_for_a_missing_seq_is_released_when_its_wait_ends(
    no_tick: CloudService, mosquitto: Mosquitto
) -> None:
    """Seq 1 never comes: seq 2 waits reorder_s (0.5 s), then is applied by the worker
    itself; before, only the tier's tick (every tick_s) released it."""
    tier = no_tick.tier
    assert tier is not None
    _partition(tier)
    pub = Publisher(mosquitto.port)
    try:
        _subscribed(tier, pub)
        pub.send(_payload(2, flooded={SENSORS[0]}))
        wait_for("seq 2 applied without seq 1", lambda: _applied(tier) == 2, 30)
        wait_for("its flood alert", lambda: _flood_alerts(no_tick) == [SENSORS[0]], 30)
    finally:
        pub.close()
