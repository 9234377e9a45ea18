"""A flood alert carries the image of a camera on its site nearest its reading time
(cloud/images/alerts.py): at the alert's change, and when a nearer image arrives later
through the receiver while the alert is still active."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from cloud.detect.base import Detection
from cloud.images.store import ImageStore
from cloud.service import CloudService
from firmware_sim.camera.scene import draw
from schemas.alert import Severity
from schemas.devices import DeviceKind
from schemas.images import ImageHeader, encode_image
from schemas.wire import DeviceInfo
from tests.cloud.api.conftest import make_service

T0 = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
SITE = "千秋アンダーパス"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[CloudService]:
    svc = make_service(tmp_path, images={"dir": str(tmp_path / "img"), "receive": False})
    svc.registry.provision(
        "gw-1",
        [
            DeviceInfo(device_id="fs-1", kind=DeviceKind("flood_sensor"), site=SITE, area="千秋"),
            DeviceInfo(device_id="cam-1", kind=DeviceKind("flood_camera"), site=SITE),
            DeviceInfo(device_id="cam-9", kind=DeviceKind("flood_camera"), site="other"),
        ],
    )
    yield svc
    svc.stop()


def _header(seq: int, taken_at: datetime, jpeg: bytes, camera: str) -> ImageHeader:
    return ImageHeader(
        gateway_id="gw-1", camera_id=camera, site="what the gateway says", seq=seq,
        taken_at=taken_at, size=len(jpeg), sha256=hashlib.sha256(jpeg).hexdigest(),
        width=1280, height=720,
    )  # fmt: skip


def _receive(svc: CloudService, seq: int, minutes: float, camera: str = "cam-1") -> int:
    """One image through the receiver's own handling (validation, store, alert offer)."""
    jpeg = draw(10.0 + seq, with_exif=False).jpeg
    msg = mqtt.MQTTMessage(mid=seq, topic=b"akita/v1/gw-1/image")
    msg.payload = encode_image(_header(seq, T0 + timedelta(minutes=minutes), jpeg, camera), jpeg)
    assert svc.images is not None
    assert svc.images.receiver._handle(msg) is True
    latest = svc.images.store.latest(camera)
    assert latest is not None and latest.seq == seq
    return latest.id


def _stage(svc: CloudService, stage: str, depth: float, at: datetime) -> str:
    det = Detection(
        detector="flood", kind="flood_stage", device_id="fs-1", ts=at, active=True,
        severity=Severity.SEVERE, value=depth, public=True, extra={"stage": stage},
    )  # fmt: skip
    # the service clock is later than the reading: the picture follows the reading time
    (change,) = svc.alerts.handle([det], at + timedelta(minutes=3))
    return change.alert.id


def _attached(svc: CloudService, alert_id: str) -> list[int]:
    assert svc.images is not None
    return [i.id for i in svc.images.store.for_alert(alert_id)]


def test_nearest_picks_the_closest_image_of_the_cameras_within_the_bound(
    service: CloudService,
) -> None:
    early = _receive(service, 1, -8)
    close = _receive(service, 2, 3)
    _receive(service, 3, 0.5, camera="cam-9")  # nearer, but not a camera asked for
    assert service.images is not None
    store: ImageStore = service.images.store
    found = store.nearest(["cam-1"], T0, timedelta(minutes=10))
    assert found is not None and found.id == close
    found = store.nearest(["cam-1"], T0 - timedelta(minutes=6), timedelta(minutes=10))
    assert found is not None and found.id == early
    assert store.nearest(["cam-1"], T0 + timedelta(minutes=20), timedelta(minutes=10)) is None
    assert store.nearest([], T0, timedelta(minutes=10)) is None


def test_a_flood_alert_gets_its_sites_nearest_image_now_and_a_nearer_one_later(
    service: CloudService,
) -> None:
    far = _receive(service, 1, -7)
    _receive(service, 2, -1, camera="cam-9")  # another site's camera: never attached
    alert_id = _stage(service, "caution", 12.0, T0)
    assert _attached(service, alert_id) == [far]
    nearer = _receive(service, 3, 2)  # arrives after the alert (a gateway's backlog)
    assert _attached(service, alert_id) == [far, nearer]
    _receive(service, 4, 5)  # farther than the one held: not attached
    assert _attached(service, alert_id) == [far, nearer]
    assert service.images is not None
    picture = service.images.alert_images.picture(alert_id, T0)
    assert picture is not None and picture.id == nearer

    # a stage change wants the picture nearest its own reading
    _stage(service, "warning", 22.0, T0 + timedelta(minutes=30))
    later = _receive(service, 5, 29)
    assert _attached(service, alert_id)[-1] == later
    picture = service.images.alert_images.picture(alert_id, T0 + timedelta(minutes=30))
    assert picture is not None and picture.id == later


def test_no_image_is_attached_to_a_resolved_alert(service: CloudService) -> None:
    alert_id = _stage(service, "caution", 12.0, T0)
    service.alerts.resolve(alert_id, actor="staff")
    _receive(service, 1, 1)
    assert _attached(service, alert_id) == []
    assert service.images is not None
    assert service.images.alert_images.prune() == 1  # its want is forgotten
