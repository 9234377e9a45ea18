"""flood_camera: ``camera_silent`` after two of the camera's own intervals without an
image, judged on the clock; the next image clears it; a checkpoint carries the timers."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

from cloud.detect.engine import DetectorEngine
from cloud.detect.kinds.flood_camera import ALERT
from schemas.wire import DeviceInfo, reading_adapter

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
SHA = "ab" * 32


def image(seq: int, at: datetime) -> object:
    values = {"image_seq": seq, "size": 20_000, "sha256": SHA}
    return reading_adapter.validate_python(
        {"device_id": "cam-araya", "kind": "flood_camera", "ts": at, "values": values}
    )


def devices(interval_s: float) -> dict[str, DeviceInfo]:
    info = DeviceInfo(device_id="cam-araya", kind="flood_camera", poll_interval_s=interval_s)
    return {"cam-araya": info}


def silent(detections: list) -> list:
    return [d for d in detections if d.kind == ALERT]


def test_silent_after_two_intervals_of_its_schedule_then_an_image_clears() -> None:
    e = DetectorEngine()
    assert silent(e.feed([image(1, T0)], devices(300))) == []
    assert silent(e.tick(T0 + timedelta(seconds=599))) == []  # one image late: jitter
    (raised,) = silent(e.tick(T0 + timedelta(seconds=601)))
    assert raised.active and raised.device_id == "cam-araya"
    assert raised.ts == T0 + timedelta(seconds=600)  # when the schedule was missed
    assert silent(e.tick(T0 + timedelta(seconds=900))) == []  # raised once
    (cleared,) = silent(e.feed([image(2, T0 + timedelta(seconds=950))], devices(300)))
    assert not cleared.active


def test_the_allowance_follows_each_cameras_interval() -> None:
    e = DetectorEngine()
    e.feed([image(1, T0)], devices(1800))  # a camera on a 30-minute schedule
    assert silent(e.tick(T0 + timedelta(seconds=3599))) == []
    assert len(silent(e.tick(T0 + timedelta(seconds=3601)))) == 1


def test_a_restored_checkpoint_keeps_the_silence_timer() -> None:
    e = DetectorEngine()
    e.feed([image(1, T0)], devices(300))
    other = DetectorEngine()
    other.restore(pickle.loads(pickle.dumps(e.state())))
    assert len(silent(other.tick(T0 + timedelta(seconds=601)))) == 1
