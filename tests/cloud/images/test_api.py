"""The image routes (viewer): latest, a time range, one image, an alert's images."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.api.auth import Role, create_token
from cloud.service import CloudService
from firmware_sim.camera.scene import draw
from schemas.images import ImageHeader
from tests.cloud.api.conftest import bearer, make_service

T0 = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[CloudService]:
    svc = make_service(tmp_path, images={"dir": str(tmp_path / "img")})
    yield svc
    svc.stop()


def _put(svc: CloudService, seq: int, depth: float) -> tuple[int, bytes]:
    jpeg = draw(depth, with_exif=False).jpeg
    header = ImageHeader(
        gateway_id="gw", camera_id="cam-1", site="up", seq=seq,
        taken_at=T0 + timedelta(minutes=seq), size=len(jpeg),
        sha256=hashlib.sha256(jpeg).hexdigest(), width=1280, height=720,
    )  # fmt: skip
    assert svc.images is not None
    return svc.images.store.put(header, jpeg, T0).image_id, jpeg


def test_viewer_reads_latest_range_and_alert_images(service: CloudService) -> None:
    ids = [_put(service, seq, 10.0 * seq)[0] for seq in (1, 2, 3)]
    latest = _put(service, 4, 40.0)[1]
    assert service.images is not None
    service.images.store.attach("al-1", ids[1], T0)
    viewer = bearer(create_token(service.sessionmaker, name="v", role=Role.VIEWER))
    with TestClient(create_app(service)) as c:
        assert c.get("/cameras/cam-1/images/latest").status_code == 401
        r = c.get("/cameras/cam-1/images/latest", headers=viewer)
        assert r.status_code == 200 and r.content == latest
        assert r.headers["content-type"] == "image/jpeg"
        assert r.headers["cache-control"] == "no-store"
        span = {"since": (T0 + timedelta(minutes=2)).isoformat(),
                "until": (T0 + timedelta(minutes=4)).isoformat()}  # fmt: skip
        r = c.get("/cameras/cam-1/images", params=span, headers=viewer)
        assert [i["seq"] for i in r.json()] == [2, 3] and r.headers["cache-control"] == "no-store"
        one = c.get(r.json()[0]["url"], headers=viewer)
        assert one.content == draw(20.0, with_exif=False).jpeg
        r = c.get("/alerts/al-1/images", headers=viewer)
        assert [i["id"] for i in r.json()] == [ids[1]]
        assert c.get("/cameras/cam-9/images/latest", headers=viewer).status_code == 404
        bad = c.get("/cameras/cam-1/images", params=span | {"until": span["since"]}, headers=viewer)
        assert bad.status_code == 422 and "must be after since" in bad.text
