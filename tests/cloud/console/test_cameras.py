"""The console's flood camera page: each camera's latest picture (from the real image
store, as the receiver stores it) with its site, time taken and the site's flood depth
(from the real time-series store); the picture served under the staff session only."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.service import CloudService
from cloud.store.base import Point
from firmware_sim.camera.scene import draw
from schemas.images import ImageHeader
from tests.cloud.citizen.test_accessibility import audit
from tests.cloud.console.conftest import Console, make_service
from tests.cloud.console.data import add_device

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
SITE = "川反アンダーパス"


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    service = make_service(tmp_path, images={"dir": str(tmp_path / "img")})
    try:
        yield Console(create_app(service), service, tmp_path)
    finally:
        service.stop()


def put_image(
    svc: CloudService, camera: str, site: str, seq: int, depth: float, taken: datetime
) -> tuple[int, bytes]:
    jpeg = draw(depth, with_exif=False).jpeg
    header = ImageHeader(
        gateway_id="gw-1", camera_id=camera, site=site, seq=seq, taken_at=taken,
        size=len(jpeg), sha256=hashlib.sha256(jpeg).hexdigest(), width=1280, height=720,
    )  # fmt: skip
    assert svc.images is not None
    return svc.images.store.put(header, jpeg, taken).image_id, jpeg


def test_viewer_sees_each_cameras_latest_picture_with_site_time_and_depth(
    console: Console,
) -> None:
    svc = console.service
    add_device(svc, "cam-1", "flood_camera", site=SITE)
    add_device(svc, "cam-2", "flood_camera", site="新屋アンダーパス")
    add_device(svc, "fl-1", "flood_sensor", site=SITE)
    t0 = datetime(2025, 7, 1, 3, 0, tzinfo=UTC)  # 12:00 in Japan
    put_image(svc, "cam-1", SITE, 1, 5.0, t0)
    newest, jpeg = put_image(svc, "cam-1", SITE, 2, 23.0, t0 + timedelta(minutes=10))
    put_image(svc, "cam-1", SITE, 3, 1.0, t0 - timedelta(minutes=10))  # older, arrived late
    svc.store.write([Point("flood_sensor", {"device": "fl-1"}, {"depth": 23.5}, t0)])

    viewer = console.client("viewer")
    home = viewer.get("/console/")
    assert 'href="/console/cameras"' in home.text  # in the menu
    page = viewer.get("/console/cameras")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "img-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    audit(html)
    assert "<script" not in html.replace('<script src="/console/static/live.js"></script>', "")
    row = html[html.index(">cam-1<") :]
    row = row[: row.index("</tr>")]
    assert "2025/07/01 12:10" in row  # the newest taken, not the last arrived
    assert "fl-1: 23.5 cm" in row and ">警戒</span>" in row
    srcs = re.findall(r'<img class="photo" src="([^"]+)"[^>]* alt="([^"]+)"', html)
    assert srcs == [
        (
            f"/console/cameras/images/{newest}.jpg",
            f"{SITE}のカメラ cam-1 の画像（2025/07/01 12:10 撮影）",
        )
    ]
    cam2 = html[html.index(">cam-2<") :]
    assert "画像はまだありません。" in cam2[: cam2.index("</tr>")]
    assert "同じ設置場所の冠水センサーはありません。" in cam2[: cam2.index("</tr>")]

    image = viewer.get(srcs[0][0])
    assert image.status_code == 200 and image.content == jpeg
    assert image.headers["content-type"] == "image/jpeg"
    assert image.headers["cache-control"] == "no-store"
    assert viewer.get("/console/cameras/images/999.jpg").status_code == 404


def test_unauthenticated_is_sent_to_sign_in_for_page_and_picture(console: Console) -> None:
    svc = console.service
    add_device(svc, "cam-1", "flood_camera", site=SITE)
    image_id, _ = put_image(svc, "cam-1", SITE, 1, 5.0, datetime.now(UTC))
    anonymous = TestClient(console.app)
    for url in ("/console/cameras", f"/console/cameras/images/{image_id}.jpg"):
        r = anonymous.get(url, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/console/signin", url
        assert r.content[:2] != b"\xff\xd8"


def test_xss_in_a_site_name_is_escaped(console: Console) -> None:
    svc = console.service
    add_device(svc, "cam-x", "flood_camera", site=XSS, area=XSS)
    add_device(svc, "fl-x", "flood_sensor", site=XSS)
    put_image(svc, "cam-x", XSS, 1, 12.0, datetime.now(UTC))
    svc.store.write([Point("flood_sensor", {"device": "fl-x"}, {"depth": 12.0}, datetime.now(UTC))])
    html = console.client("viewer").get("/console/cameras").text
    assert XSS not in html and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "fl-x: 12.0 cm" in html


def test_without_an_image_store_the_page_says_so(tmp_path: Path) -> None:
    svc = make_service(tmp_path)
    try:
        c = Console(create_app(svc), svc, tmp_path)
        add_device(svc, "cam-1", "flood_camera", site=SITE)
        html = c.client("viewer").get("/console/cameras").text
        assert "画像の保存先（[images]）が設定されていない" in html
        assert "画像はまだありません。" in html
        assert c.client("viewer").get("/console/cameras/images/1.jpg").status_code == 404
    finally:
        svc.stop()
