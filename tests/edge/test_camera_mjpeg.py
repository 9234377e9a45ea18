"""MJPEG at the edge (issue 18): the first complete JPEG part of a camera's
``multipart/x-mixed-replace`` stream over real HTTP (the simulator's ``/video.mjpg``, digest
auth), through the same checks and privacy path as a snapshot; broken streams reported
with their reason; the config's ``mjpeg_url`` / ``mode`` checked with file:line:column.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from edge.cameras.capture import CaptureError, capture
from edge.cameras.config import Camera, Cameras, Mode
from edge.cameras.service import CameraService
from edge.config import load_config
from edge.errors import ConfigError
from firmware_sim.camera.scene import read_depth_cm
from firmware_sim.camera.server import CameraServer
from tests.edge.test_cameras import WINDOW_POLY, Offline, window_is_solid

SAMPLE = Path(__file__).parents[2] / "deploy" / "edge" / "flood_camera.toml"


def mjpeg_camera(sim: CameraServer, **kw: Any) -> Camera:
    base: dict[str, Any] = {
        "id": "cam-m",
        "site": "up-1",
        "mjpeg_url": sim.mjpeg_url,
        "auth": "digest",
        "username": "admin",
        "password": "sim-pass",
        "masks": [WINDOW_POLY],
        "timeout_s": 5.0,
    }
    return Camera.model_validate(base | kw)


async def _grab(cam: Camera) -> bytes:
    async with httpx.AsyncClient() as client:
        return await capture(client, cam)


@pytest.mark.parametrize("part_length", [True, False], ids=["content-length", "boundary-scan"])
def test_first_mjpeg_part_with_digest_goes_through_the_privacy_path(
    tmp_path: Path, part_length: bool
) -> None:
    depth = 31.0
    sim = CameraServer(lambda: depth, auth="digest").start()
    sim.mjpeg_part_length = part_length
    try:
        cam = mjpeg_camera(sim)
        assert cam.capture_mode is Mode.MJPEG
        raw = asyncio.run(_grab(cam))
        assert Image.open(io.BytesIO(raw)).getexif(), "the simulator's frame carries EXIF"
        assert raw.startswith(b"\xff\xd8") and raw.endswith(b"\xff\xd9")

        svc = CameraService(
            Cameras(spool_path=tmp_path / "img.db", cameras=[cam]),
            "gw-m",
            Offline(),
            now=lambda: 1.0,
        )

        async def take() -> bool:
            async with httpx.AsyncClient() as client:
                return await svc.take(client, cam)

        assert asyncio.run(take()), svc.status[cam.id].reason
        img = svc.spool.oldest()
        assert img is not None
        svc.spool.close()
    finally:
        sim.stop()
    assert sim.mjpeg_opened == 2  # one stream each, no snapshot URL involved
    out = Image.open(io.BytesIO(img.jpeg))
    assert out.size == (640, 360)
    assert not out.getexif() and "exif" not in out.info
    assert window_is_solid(out)
    assert read_depth_cm(out) == pytest.approx(depth, abs=1.0)


@pytest.mark.parametrize(
    ("fault", "part_length", "max_bytes", "reason"),
    [
        (
            "no_boundary",
            True,
            5_000_000,
            "MJPEG stream without a boundary in 'multipart/x-mixed-replace'",
        ),
        ("truncated", True, 5_000_000, "truncated MJPEG part: stream ended after "),
        ("truncated", False, 5_000_000, "truncated MJPEG part: stream ended after "),
        (None, True, 10_000, "over max_bytes 10000"),
        (None, False, 10_000, "over max_bytes 10000"),
    ],
)
def test_a_broken_stream_is_reported_with_its_reason(
    fault: str | None, part_length: bool, max_bytes: int, reason: str
) -> None:
    sim = CameraServer(lambda: 5.0, auth="digest").start()
    sim.fault, sim.mjpeg_part_length = fault, part_length
    try:
        with pytest.raises(CaptureError) as err:
            asyncio.run(_grab(mjpeg_camera(sim, max_bytes=max_bytes)))
    finally:
        sim.stop()
    assert reason in err.value.reason
    if fault == "truncated" and part_length:
        assert " of " in err.value.reason  # the declared length is named


def test_wrong_password_on_the_stream_is_http_401() -> None:
    sim = CameraServer(lambda: 5.0, auth="digest").start()
    try:
        with pytest.raises(CaptureError) as err:
            asyncio.run(_grab(mjpeg_camera(sim, password="wrong")))
    finally:
        sim.stop()
    assert err.value.reason == "HTTP 401"


def test_a_snapshot_url_on_an_mjpeg_stream_is_refused_as_not_a_jpeg() -> None:
    sim = CameraServer(lambda: 5.0).start()
    try:
        cam = Camera.model_validate({"id": "c", "site": "s", "url": sim.mjpeg_url, "timeout_s": 2})
        with pytest.raises(CaptureError) as err:
            asyncio.run(_grab(cam))
    finally:
        sim.stop()
    assert "content-type 'multipart/x-mixed-replace'" in err.value.reason


def _toml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "edge.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_config_mjpeg_url_and_mode(tmp_path: Path) -> None:
    url = 'url = "http://192.168.20.6/cgi-bin/snapshot.jpg"'
    both = SAMPLE.read_text(encoding="utf-8").replace(
        url, url + '\n  mjpeg_url = "http://192.168.20.6/video.mjpg"\n  mode = "mjpeg"'
    )
    cfg = load_config(_toml(tmp_path, both))
    assert cfg.cameras is not None
    assert cfg.cameras.cameras[0].capture_mode is Mode.MJPEG

    bad_url = both.replace('mjpeg_url = "http://', 'mjpeg_url = "rtsp://')
    with pytest.raises(ConfigError) as err:
        load_config(_toml(tmp_path, bad_url))
    line = next(i for i, t in enumerate(bad_url.splitlines(), 1) if "rtsp://" in t)
    assert f"edge.toml:{line}:3: cameras.cameras.0.mjpeg_url" in str(err.value)

    no_stream = SAMPLE.read_text(encoding="utf-8").replace(url, url + '\n  mode = "mjpeg"')
    with pytest.raises(ConfigError) as err:
        load_config(_toml(tmp_path, no_stream))
    assert "mode mjpeg needs 'mjpeg_url'" in str(err.value)
    line = no_stream.splitlines().index("  [[cameras.cameras]]") + 1  # the camera's table
    assert f"edge.toml:{line}:3: cameras.cameras.0: camera 'cam-araya-underpass'" in str(err.value)

    neither = SAMPLE.read_text(encoding="utf-8").replace(url, "")
    with pytest.raises(ConfigError) as err:
        load_config(_toml(tmp_path, neither))
    assert "give 'url' (snapshot) or 'mjpeg_url'" in str(err.value)
