"""A checkpoint this version cannot read (a newer version's, before a rollback, or damaged
bytes): the error names the partition, and the detector starts that partition afresh and
says so, instead of refusing to start (a partition nobody owns detects no flood).

A checkpoint carries its format: a newer format is refused by it, even when its state would
unpickle, and one written before formats existed is read as format 0."""

from __future__ import annotations

import logging
import pickle
import shlex
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.base import create_all, make_engine, make_sessionmaker
from cloud.db.detect import CheckpointRow
from cloud.detect import checkpoint
from cloud.detect.lease import Lease
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

# a newer version's envelope: its format is read before its state's classes are needed
FUTURE = pickle.dumps({"format": 99, "state": NEWER})


@pytest.fixture
def started_over(
    tmp_path: Path,
    sm: sessionmaker[Session],
    mosquitto: Mosquitto,
    unique: str,
    caplog: pytest.LogCaptureFixture,
) -> Callable[[bytes], CloudService]:
    """Start a whole cloud process over partition 0's checkpoint ``blob``."""

    def start(blob: bytes) -> CloudService:
        _write(sm, 0, blob)
        settings = CloudSettings.from_mapping(
            local_settings(tmp_path, mosquitto.port, unique), source="test"
        )
        caplog.set_level(logging.ERROR, logger="cloud.detect.tier")
        svc = CloudService(settings)
        svc.start()
        return svc

    return start


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


def test_a_checkpoint_round_trips_as_the_current_format(sm: sessionmaker[Session]) -> None:
    state = {"engine": {"baseline": 41.5}, "applied": {"gw-1": 7}}
    assert checkpoint.save(sm, Lease(4, "detect-a", 3), state, event_time=None, now=SAVED,
                           fenced=False)  # fmt: skip
    with sm() as s:
        row = s.get(CheckpointRow, 4)
        assert row is not None and pickle.loads(row.state)["format"] == 1
    saved = checkpoint.load(sm, 4)
    assert saved is not None and saved.format == checkpoint.CHECKPOINT_FORMAT == 1
    assert saved.state == state and saved.fence == 3


def test_a_checkpoint_from_before_formats_reads_as_format_0(sm: sessionmaker[Session]) -> None:
    state = {"engine": {"baseline": 41.5}, "order": {}, "applied": {"gw-1": 7}}
    _write(sm, 5, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
    saved = checkpoint.load(sm, 5)
    assert saved is not None and saved.format == 0 and saved.state == state


def test_a_newer_format_names_its_partition_and_both_formats(
    sm: sessionmaker[Session],
) -> None:
    _write(sm, 3, FUTURE)
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.load(sm, 3)
    msg = str(err.value)
    assert msg.startswith("partition 3:") and "2026-12-01 09:00" in msg
    assert "is format 99" in msg and "reads up to format 1" in msg, msg


def test_the_detector_starts_a_partition_with_a_newer_format_afresh(
    started_over: Callable[[bytes], CloudService],
    sm: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    svc = started_over(FUTURE)
    svc.stop()
    messages = [r.getMessage() for r in caplog.records]
    lines = [m for m in messages if m.startswith("detect_checkpoint_unreadable")]
    assert len(lines) == 1, lines
    event, *pairs = shlex.split(lines[0])  # key=value, the error quoted
    fields = dict(pair.split("=", 1) for pair in pairs)
    assert event == "detect_checkpoint_unreadable" and len(fields) == len(pairs)
    assert fields["partition"] == "0" and fields["action"] == "start_fresh"
    assert "is format 99" in fields["error"], fields
    saved = checkpoint.load(sm, 0)  # the fresh partition's checkpoint replaced it
    assert saved is not None and saved.format == 1


def test_the_detector_starts_that_partition_afresh_and_still_detects(
    started_over: Callable[[bytes], CloudService],
    sm: sessionmaker[Session],
    mosquitto: Mosquitto,
    unique: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    svc = started_over(NEWER)  # raised CheckpointError (the cloud would not start) before
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
