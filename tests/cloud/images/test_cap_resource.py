"""The public CAP feed carries a flood alert's picture as a CAP 1.2 ``resource``
(cloud/images/cap_resource.py): the 48 h link's JPEG from the configured public URL,
size and SHA-1 of the bytes it serves; only for public devices; schema-valid."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import xmlschema
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.detect.base import Detection
from cloud.notify.cap import ATOM_NS, CAP_NS
from cloud.service import CloudService
from firmware_sim.camera.scene import draw
from schemas.alert import Severity
from schemas.devices import DeviceKind
from schemas.images import ImageHeader
from schemas.wire import DeviceInfo
from tests.cloud.api.conftest import make_service

PUBLIC_URL = "https://bousai.city.test"
XSD = Path(__file__).resolve().parents[2] / "fixtures" / "cap" / "CAP-v1.2.xsd"
NS = {"cap": CAP_NS, "atom": ATOM_NS}
SITE = "千秋アンダーパス"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[CloudService, TestClient]]:
    svc = make_service(
        tmp_path,
        images={"dir": str(tmp_path / "img"), "receive": False},
        api={"public_url": PUBLIC_URL},
        alerts={"hold_off_s": 0, "min_open_s": 0},
    )
    svc.registry.provision(
        "gw-1",
        [
            DeviceInfo(device_id="fs-1", kind=DeviceKind("flood_sensor"), site=SITE, area="千秋"),
            DeviceInfo(device_id="cam-1", kind=DeviceKind("flood_camera"), site=SITE),
            DeviceInfo(device_id="cu-1", kind=DeviceKind("call_unit"), site=SITE, area="千秋"),
        ],
    )
    try:
        with TestClient(create_app(svc)) as client:
            yield svc, client
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


def _stage(svc: CloudService, stage: str, depth: float, at: datetime, device: str) -> str:
    det = Detection(
        detector="flood", kind="flood_stage", device_id=device, ts=at, active=True,
        severity=Severity.SEVERE, value=depth, public=True, extra={"stage": stage},
    )  # fmt: skip
    [change] = svc.alerts.handle([det], at)
    return change.alert.id


def _resources(xml: bytes) -> list[ET.Element]:
    return ET.fromstring(xml).findall(".//cap:info/cap:resource", NS)


def test_feed_resource_is_the_public_links_jpeg_and_validates(
    world: tuple[CloudService, TestClient],
) -> None:
    svc, client = world
    _put(svc, 1, 12.0, T0)
    jpeg = _put(svc, 2, 24.0, T0 + timedelta(minutes=1))
    alert_id = _stage(svc, "warning", 24.0, T0 + timedelta(minutes=1), "fs-1")

    feed = client.get("/cap/alerts.xml", headers={"Host": "evil.example"})
    assert feed.status_code == 200 and "evil" not in feed.text
    schema = xmlschema.XMLSchema(str(XSD))
    for alert in ET.fromstring(feed.content).findall(".//cap:alert", NS):
        schema.validate(ET.tostring(alert))
    resources = _resources(feed.content)
    assert len(resources) == 2  # one per language (ja-JP, en-US)
    uris = {r.findtext("cap:uri", namespaces=NS) for r in resources}
    assert len(uris) == 1
    uri = uris.pop()
    assert uri is not None and uri.startswith(PUBLIC_URL + "/citizen/flood/images/")
    assert uri.endswith("/image.jpg")
    for r in resources:
        assert r.findtext("cap:mimeType", namespaces=NS) == "image/jpeg"
        assert r.findtext("cap:size", namespaces=NS) == str(len(jpeg))
        assert r.findtext("cap:digest", namespaces=NS) == hashlib.sha1(jpeg).hexdigest()
        assert r.findtext("cap:resourceDesc", namespaces=NS)
    # the link serves exactly those bytes (the picture nearest the 警戒 reading)
    image = client.get(uri.removeprefix(PUBLIC_URL))
    assert image.status_code == 200 and image.content == jpeg
    assert image.headers["cache-control"] == "no-store"
    # the same link on the next fetch (feed readers cache it), and in the single message
    assert (
        _resources(client.get("/cap/alerts.xml").content)[0].findtext("cap:uri", namespaces=NS)
        == uri
    )
    one = client.get(f"/cap/alerts/{alert_id}.xml")
    schema.validate(one.content)
    assert [r.findtext("cap:uri", namespaces=NS) for r in _resources(one.content)] == [uri] * 2
    assert "cam-1" not in feed.text and "gw-1" not in feed.text


def test_no_resource_without_a_picture_or_for_a_private_device(
    world: tuple[CloudService, TestClient],
) -> None:
    svc, client = world
    _stage(svc, "warning", 24.0, T0, "fs-1")  # no image stored: no resource
    assert _resources(client.get("/cap/alerts.xml").content) == []
    _put(svc, 1, 24.0, T0 + timedelta(minutes=1))
    call_unit = _stage(svc, "warning", 24.0, T0 + timedelta(minutes=1), "cu-1")
    assert client.get(f"/cap/alerts/{call_unit}.xml").status_code == 404
    feed = client.get("/cap/alerts.xml")
    assert call_unit not in feed.text
    # the sensor's alert now has the picture (it arrived after the stage change)
    assert len(_resources(feed.content)) == 2
