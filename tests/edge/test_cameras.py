"""Flood cameras at the edge against simulated cameras over real HTTP and real Mosquitto.

Privacy (mask solid, no EXIF, the depth still readable from the pixels), bad cameras
reported with their reason while the others keep being polled, an uplink outage during a
storm (every image arrives, in order), and the spool's byte bound with drops counted.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from PIL import Image

from edge.cameras.capture import snapshot
from edge.cameras.config import Camera, Cameras
from edge.cameras.privacy import mask_and_scale
from edge.cameras.service import CameraService
from edge.cameras.spool import ImageSpool, SpooledImage
from edge.config import EdgeConfig
from edge.uplink import Uplink
from firmware_sim.camera.scene import HEIGHT, WIDTH, WINDOW, read_depth_cm
from firmware_sim.camera.server import CameraServer
from schemas import topics
from schemas.images import decode_image
from tests.edge.downlink_peers import Relay, subscribed_client
from tests.servers import free_port, running_mosquitto, wait_for

GW = "gw-cam"
MASK_BLACK = (0, 0, 0)
WINDOW_POLY = [
    (WINDOW[0], WINDOW[1]),
    (WINDOW[2], WINDOW[1]),
    (WINDOW[2], WINDOW[3]),
    (WINDOW[0], WINDOW[3]),
]


def camera(cid: str, url: str, **kw: Any) -> Camera:
    base: dict[str, Any] = {"id": cid, "site": "up-1", "url": url, "masks": [WINDOW_POLY]}
    return Camera.model_validate(base | kw)


def window_is_solid(img: Image.Image) -> bool:
    """Every pixel of the masked window (3 px in from the edge JPEG rings at) is the mask."""
    sx, sy = img.width / WIDTH, img.height / HEIGHT
    x0, y0, x1, y1 = (round(WINDOW[0] * sx) + 3, round(WINDOW[1] * sy) + 3,
                      round(WINDOW[2] * sx) - 3, round(WINDOW[3] * sy) - 3)  # fmt: skip
    rgb = img.convert("RGB")
    for y in range(y0, y1):
        for x in range(x0, x1):
            px = rgb.getpixel((x, y))
            assert isinstance(px, tuple)
            if max(abs(a - b) for a, b in zip(px, MASK_BLACK, strict=True)) > 12:
                return False
    return True


class SimClock:
    """Simulated time running ``speed`` times faster than the wall clock."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._t0, self._m0 = 1_750_000_000.0, time.monotonic()

    def __call__(self) -> float:
        return self._t0 + (time.monotonic() - self._m0) * self.speed


class Offline:
    """The uplink while it is down: nothing can be published."""

    connected = False

    def publish_image(self, payload: bytes, on_ack: Any) -> None:
        raise AssertionError("published while the link is down")


@pytest.mark.parametrize("auth", ["basic", "digest"])
def test_privacy_masks_strips_exif_scales_and_keeps_the_depth(auth: str) -> None:
    depth = 24.0
    sim = CameraServer(lambda: depth, auth=auth).start()
    try:
        cam = camera("cam-1", sim.url, auth=auth, username="admin", password="sim-pass")

        async def grab() -> bytes:
            async with httpx.AsyncClient() as client:
                return await snapshot(client, cam)

        raw = asyncio.run(grab())
    finally:
        sim.stop()
    assert Image.open(io.BytesIO(raw)).getexif(), "the simulator must send EXIF to strip"
    assert not window_is_solid(Image.open(io.BytesIO(raw)))  # the person is visible raw
    out = Image.open(io.BytesIO(mask_and_scale(raw, cam)))
    assert out.size == (640, 360)
    assert not out.getexif() and "exif" not in out.info and "icc_profile" not in out.info
    assert window_is_solid(out)
    assert read_depth_cm(out) == pytest.approx(depth, abs=1.0)


def test_bad_cameras_are_reported_and_the_others_keep_being_polled(tmp_path: Path) -> None:
    sims = {
        name: CameraServer(lambda: 5.0).start()
        for name in ("good", "slow", "html", "trunc", "huge")
    }
    sims["slow"].fault, sims["slow"].slow_s = "slow", 3.0
    sims["html"].fault, sims["trunc"].fault, sims["huge"].fault = "html", "truncated", "huge"
    dead_port = free_port()  # nothing listens there: connect refused
    cams = [
        camera(n, s.url, interval_s=0.3, alert_interval_s=0.3, timeout_s=0.5)
        for n, s in sims.items()
    ]
    cams.append(
        camera(
            "refused",
            f"http://127.0.0.1:{dead_port}/snapshot.jpg",
            interval_s=0.3,
            alert_interval_s=0.3,
        )
    )
    cfg = Cameras(spool_path=tmp_path / "images.db", cameras=cams)
    svc = CameraService(cfg, GW, Offline(), now=time.time)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(svc.run(stop))
        bad = ("slow", "html", "trunc", "huge", "refused")
        await asyncio.to_thread(
            wait_for,
            "the good camera polled 5 times and every bad one failed twice",
            lambda: svc.status["good"].taken >= 5 and all(svc.status[b].failures >= 2 for b in bad),
        )
        stop.set()
        await task

    try:
        asyncio.run(main())
    finally:
        for s in sims.values():
            s.stop()
    st = svc.status
    assert st["good"].ok and st["good"].failures == 0
    assert st["slow"].reasons == ["timeout after 0.5 s"]
    assert st["html"].reasons == ["not a JPEG: content-type 'text/html'"]
    assert st["trunc"].reasons[0].startswith("truncated JPEG: no end-of-image marker")
    assert st["huge"].reasons == ["body of 52428800 bytes is over max_bytes 5000000"]
    assert st["refused"].reasons and not st["refused"].ok
    assert all(s.taken == 0 for n, s in st.items() if n != "good")


class Collector:
    """The cloud's side of the image topic: every message as received, in order."""

    def __init__(self, port: int) -> None:
        self.got: list[tuple[int, str, bytes]] = []
        self._lock = threading.Lock()
        # subscribed before the first picture is published: the broker keeps nothing for
        # a subscription it has not acknowledged yet
        self._c = subscribed_client(port, [(topics.image(GW), 1)], self._on)

    def _on(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        header, jpeg = decode_image(bytes(msg.payload))
        with self._lock:
            self.got.append((header.seq, header.taken_at.isoformat(), jpeg))

    def close(self) -> None:
        self._c.loop_stop()
        self._c.disconnect()


def test_storm_outage_every_image_arrives_once_in_order(tmp_path: Path) -> None:
    clock = SimClock(speed=60.0)  # 10 simulated minutes pass in 10 s
    depth = {"cm": 0.0}
    sim = CameraServer(lambda: depth["cm"], auth="digest").start()
    (tmp_path / "mq").mkdir()
    with running_mosquitto(tmp_path / "mq") as broker:
        relay = Relay(broker.port)
        collector = Collector(broker.port)
        edge = EdgeConfig.model_validate(
            {"gateway": {"id": GW, "spool_path": str(tmp_path / "s.db")},
             "mqtt": {"host": "127.0.0.1", "port": relay.port, "reconnect_min_s": 1,
                      "reconnect_max_s": 1}}
        )  # fmt: skip
        cam = camera("cam-1", sim.url, auth="digest", username="admin", password="sim-pass",
                     interval_s=600, alert_interval_s=20)  # fmt: skip
        cfg = Cameras(spool_path=tmp_path / "images.db", cameras=[cam])

        async def main() -> CameraService:
            uplink = Uplink(edge, on_ack=lambda mid: None, on_state=lambda up: None)
            uplink.start()
            svc = CameraService(cfg, GW, uplink, now=clock)
            stop = asyncio.Event()
            task = asyncio.create_task(svc.run(stop))
            await asyncio.sleep(2.0)  # 2 sim minutes at 0 cm: one picture at the 10-min pace
            before = svc.status["cam-1"].taken
            depth["cm"] = 15.0
            svc.observe_depth("up-1", "fs-1", depth["cm"])  # 注意: the pace rises
            await asyncio.sleep(1.0)
            relay.cut()
            t_cut = clock()
            await asyncio.to_thread(
                wait_for, "10 simulated minutes", lambda: clock() - t_cut >= 600
            )
            relay.mend()
            taken = svc.status["cam-1"].taken
            assert before == 1 and taken >= 1 + 600 / 20 - 1
            await asyncio.to_thread(
                wait_for, "the spool drained", lambda: svc.spool.waiting() == 0, 30.0
            )
            stop.set()
            await task
            await uplink.stop()
            return svc

        try:
            svc = asyncio.run(main())
            # a picture taken between the drain and the stop (one every 1/3 s here) waits
            # in the spool on disk for the next run: sent are the ones before it
            spool = ImageSpool(cfg.spool_path, max_bytes=cfg.spool_max_bytes)
            left, waiting = spool.oldest(), spool.waiting()
            spool.close()
            taken = svc.status["cam-1"].taken
            sent = left.seq - 1 if left is not None else taken
            wait_for(
                f"images 1-{sent} of {taken} at the collector",
                lambda: len({g[0] for g in collector.got}) >= sent,
            )
        finally:
            collector.close()
            relay.close()
            sim.stop()
    seqs = [g[0] for g in collector.got]
    first = list(dict.fromkeys(seqs))  # a re-send after the cut repeats a seq; the cloud keeps one
    assert first == list(range(1, sent + 1)) and waiting == taken - sent  # none lost
    times = [g[1] for g in collector.got]
    assert times == sorted(times)
    for _, _, jpeg in collector.got:
        img = Image.open(io.BytesIO(jpeg))
        assert window_is_solid(img) and not img.getexif()
    assert len(seqs) - len(first) <= 1  # at most the one in flight at the cut


def test_spool_bound_drops_oldest_and_counts(tmp_path: Path) -> None:
    spool = ImageSpool(tmp_path / "images.db", max_bytes=100_000)
    for i in range(30):
        spool.add(
            SpooledImage(
                0,
                "cam-1",
                "up-1",
                f"2025-07-01T00:{i:02d}:00+00:00",
                "0" * 64,
                640,
                360,
                bytes(10_000),
            )
        )
    assert spool.size_bytes() <= 100_000
    assert spool.waiting() == 10 and spool.dropped == 20
    oldest = spool.oldest()
    assert oldest is not None and oldest.seq == 21  # the newest ten are kept
    spool.close()
    reopened = ImageSpool(tmp_path / "images.db", max_bytes=100_000)
    assert reopened.dropped == 20  # the count survives a restart
    seq, _ = reopened.add(
        SpooledImage(0, "cam-1", "up-1", "2025-07-01T01:00:00+00:00", "0" * 64, 640, 360, b"x")
    )
    assert seq == 31  # seq never reused after deletes
