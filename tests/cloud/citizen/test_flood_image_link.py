"""The residents' 警戒/危険 e-mail links a public page with the alert's picture
(cloud/images/links.py, cloud/citizen/flood_images.py): aiosmtpd receives the real
dispatcher's mail; the page and its JPEG are read through the app."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cloud.api.app import create_app
from cloud.citizen import subscriptions
from cloud.detect.base import Detection
from cloud.images.db import ImageLinkRow
from cloud.service import CloudService
from firmware_sim.camera.scene import draw
from schemas.alert import Severity
from schemas.devices import DeviceKind
from schemas.images import ImageHeader
from schemas.wire import DeviceInfo
from tests.cloud.citizen.conftest import PUBLIC_URL, Smtp, make_service, smtp  # noqa: F401

SITE, AREA = "千秋アンダーパス", "千秋矢留町"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
LINK = re.compile(r"現地の画像（48時間有効）: (\S+)")


@dataclass
class World:
    service: CloudService
    client: TestClient
    smtp: Smtp


@pytest.fixture
def world(tmp_path: Path, smtp: Smtp) -> Iterator[World]:  # noqa: F811
    svc = make_service(
        tmp_path, smtp, images={"dir": str(tmp_path / "img"), "receive": False},
        notify={"recipient_salt": "salt-flood-image-link-test"},
    )  # fmt: skip
    svc.registry.provision(
        "gw-1",
        [
            DeviceInfo(device_id="fs-1", kind=DeviceKind("flood_sensor"), site=SITE, area=AREA),
            DeviceInfo(device_id="cam-1", kind=DeviceKind("flood_camera"), site=SITE),
            DeviceInfo(device_id="cu-1", kind=DeviceKind("call_unit"), site=SITE, area=AREA),
        ],
    )
    form = {"channel": "email", "address": "r@example.jp", "consent": "yes", "area": AREA}
    data = subscriptions.parse_subscription(form, ["flood"], {AREA}, sms_available=False)
    tokens: list[str] = []
    subscriptions.create(svc.sessionmaker, data, tokens.append)
    assert subscriptions.confirm(svc.sessionmaker, tokens[0]) is not None
    try:
        with TestClient(create_app(svc)) as client:
            yield World(svc, client, smtp)
    finally:
        svc.stop()


def _put(svc: CloudService, seq: int, depth: float, taken_at: datetime) -> bytes:
    jpeg = draw(depth, with_exif=False).jpeg
    header = ImageHeader(
        gateway_id="gw-1", camera_id="cam-1", site=SITE, seq=seq, taken_at=taken_at,
        size=len(jpeg), sha256=hashlib.sha256(jpeg).hexdigest(), width=1280, height=720,
    )  # fmt: skip
    assert svc.images is not None
    svc.images.alert_images.on_stored(svc.images.store.put(header, jpeg, taken_at).image_id)
    return jpeg


def _stage(svc: CloudService, stage: str, depth: float, at: datetime, device: str = "fs-1") -> None:
    det = Detection(
        detector="flood", kind="flood_stage", device_id=device, ts=at, active=True,
        severity=Severity.SEVERE if stage != "caution" else Severity.MODERATE, value=depth,
        public=True, extra={"stage": stage},
    )  # fmt: skip
    svc.alerts.handle([det], at)
    assert svc.notifier is not None and svc.notifier.flush(20)


def _mails(w: World) -> list[str]:
    return [w.smtp.mailbox.text(m) for m in w.smtp.mailbox.to("r@example.jp")]


def test_warning_mail_links_an_expiring_page_with_the_picture(world: World) -> None:
    w, svc = world, world.service
    _stage(svc, "caution", 12.0, T0)
    jpeg = _put(svc, 1, 22.0, T0 + timedelta(minutes=1))
    _stage(svc, "warning", 22.0, T0 + timedelta(minutes=1))
    caution, warning = _mails(w)
    assert LINK.search(caution) is None  # 注意: no picture link
    found = LINK.search(warning)
    assert found is not None, warning
    url = found.group(1)
    assert url.startswith(PUBLIC_URL + "/citizen/flood/images/")
    path = url.removeprefix(PUBLIC_URL)
    token = path.rsplit("/", 1)[1]
    with svc.sessionmaker() as s:  # only the hash is stored
        stored = s.scalar(select(ImageLinkRow.token_hash))
    assert stored == hashlib.sha256(token.encode()).hexdigest()

    page = w.client.get(path, headers={"Host": "evil.example"})
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "content-security-policy" in page.headers and "<script" not in page.text
    assert "警戒" in page.text and SITE in page.text
    assert "cam-1" not in page.text and "gw-1" not in page.text and "evil" not in page.text
    src = re.search(r'<img class="road" src="([^"]+)"', page.text)
    assert src is not None and src.group(1) == path + "/image.jpg"
    image = w.client.get(src.group(1))
    assert image.status_code == 200 and image.content == jpeg
    assert image.headers["content-type"] == "image/jpeg"
    assert image.headers["cache-control"] == "no-store"

    assert w.client.get(path[:-3] + "xyz").status_code == 404
    assert svc.images is not None and svc.images.links is not None
    svc.images.links._now = lambda: datetime.now(UTC) + timedelta(hours=48, seconds=1)
    gone = w.client.get(path)
    assert gone.status_code == 410 and "有効期限" in gone.text
    assert w.client.get(path + "/image.jpg").status_code == 410


def test_no_link_for_a_device_not_of_a_public_kind(world: World) -> None:
    svc = world.service
    _put(svc, 1, 22.0, T0)
    _stage(svc, "warning", 22.0, T0, device="cu-1")  # a call unit's alert, marked public
    assert svc.images is not None and svc.images.links is not None
    with svc.sessionmaker() as s:
        assert s.scalar(select(ImageLinkRow.token_hash)) is None
    assert all(LINK.search(m) is None for m in _mails(world))


def test_flood_page_shows_each_public_sensors_latest_picture(world: World) -> None:
    svc, client = world.service, world.client
    _put(svc, 1, 12.0, T0)
    latest = _put(svc, 2, 25.0, T0 + timedelta(minutes=10))
    page = client.get("/citizen/flood")
    assert page.status_code == 200 and "<script" not in page.text
    srcs = re.findall(r'<img class="road" src="([^"]+)"', page.text)
    assert srcs == ["/citizen/flood/sensors/fs-1/image.jpg"]
    assert "cam-1" not in page.text and "cu-1" not in page.text
    image = client.get(srcs[0])
    assert image.status_code == 200 and image.content == latest
    assert image.headers["cache-control"] == "private, max-age=60"
    # a call unit on the same site is not a public device: no picture through it
    assert client.get("/citizen/flood/sensors/cu-1/image.jpg").status_code == 404
    assert client.get("/citizen/flood/sensors/cam-1/image.jpg").status_code == 404
