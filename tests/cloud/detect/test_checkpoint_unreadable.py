"""A checkpoint this version cannot read (a newer version's, before a rollback, or damaged
bytes): the error names the partition, and the detector starts that partition afresh and
says so, instead of refusing to start (a partition nobody owns detects no flood)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.base import create_all, make_engine, make_sessionmaker
from cloud.db.detect import CheckpointRow
from cloud.detect import checkpoint
from cloud.service import CloudService
from cloud.settings import CloudSettings
from schemas import topics
from schemas.codec import encode_batch
from schemas.wire import Batch, DeviceInfo, FloodSensorReading
from tests.cloud.local import local_settings
from tests.servers import Mosquitto, wait_for

SAVED = datetime(2026, 12, 1, 9, tzinfo=UTC)
# what an unpickler meets after a rollback: a class the older code does not have
NEWER = b"ccloud.detect.future_state\nPartitionState\n."


def _write(sm: sessionmaker[Session], partition: int, blob: bytes) -> None:
    with sm.begin() as s:
        s.add(CheckpointRow(partition=partition, fence=1, saved_at=SAVED, event_time=None,
                            state=blob))  # fmt: skip


@pytest.fixture
def sm(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'akita.db'}")
    create_all(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.mark.parametrize("blob", [NEWER, b"not a pickle at all"])
def test_an_unreadable_checkpoint_names_its_partition(
    sm: sessionmaker[Session], blob: bytes
) -> None:
    _write(sm, 2, blob)
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.load(sm, 2)
    assert "partition 2" in str(err.value) and "2026-12-01 09:00" in str(err.value)


def test_the_detector_starts_that_partition_afresh_and_still_detects(
    tmp_path: Path,
    sm: sessionmaker[Session],
    mosquitto: Mosquitto,
    unique: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _write(sm, 0, NEWER)
    settings = CloudSettings.from_mapping(
        local_settings(tmp_path, mosquitto.port, unique), source="test"
    )
    caplog.set_level(logging.ERROR, logger="cloud.detect.tier")
    svc = CloudService(settings)
    svc.start()  # raised CheckpointError (the cloud would not start) before
    try:
        lines = [r.getMessage() for r in caplog.records]
        assert any(
            "detect_checkpoint_unreadable" in m and "partition=0" in m and "start_fresh" in m
            for m in lines
        ), lines
        gw, flood = f"gw-{unique}", f"fl-{unique}"
        svc.registry.provision(gw, [DeviceInfo(device_id=flood, kind="flood_sensor")])  # type: ignore[arg-type]
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{unique}")
        pub.connect("127.0.0.1", mosquitto.port)
        pub.loop_start()
        start = datetime.now(UTC) - timedelta(minutes=5)
        for seq, depth in enumerate([0.0, 12.0, 25.0]):
            ts = start + timedelta(minutes=seq)
            batch = Batch(gateway_id=gw, seq=seq, sent_at=ts, readings=[
                FloodSensorReading(device_id=flood, ts=ts, values={"depth": depth})])  # type: ignore[arg-type]  # fmt: skip
            pub.publish(topics.telemetry(gw), encode_batch(batch), qos=1).wait_for_publish()
        pub.loop_stop()
        pub.disconnect()
        wait_for(
            "a flood alert from the fresh partition",
            lambda: any(r.alert.device_id == flood for r in svc.alerts.query(limit=100)),
            timeout=30.0,
        )
    finally:
        svc.stop()
    saved = checkpoint.load(sm, 0)  # the fresh partition's checkpoint replaced it
    assert saved is not None and gw in saved.state["applied"]
