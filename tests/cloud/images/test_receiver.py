"""The cloud's image receiver and store against real Mosquitto and the real gateway
side (edge/cameras: privacy masking, the image spool, the uploader on the edge uplink).

Every image the gateway takes arrives once and in order, across a receiver outage; an
image for another gateway's camera is dead-lettered; stored files are masked, carry no
EXIF and are 0600 in 0700 directories; a re-send is acknowledged and not stored twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from PIL import Image
from sqlalchemy import select

from cloud.db.base import create_all, make_engine, make_sessionmaker
from cloud.images.db import ImageRow
from cloud.images.receiver import ImageReceiver
from cloud.images.settings import ImageSettings
from cloud.images.store import ImageStore
from cloud.ingest.settings import IngestSettings
from cloud.metrics import Metrics
from cloud.registry import Registry
from edge.cameras.config import Camera
from edge.cameras.privacy import mask_and_scale
from edge.cameras.spool import ImageSpool, SpooledImage
from edge.cameras.uploader import ImageUploader
from edge.config import EdgeConfig
from edge.uplink import Uplink
from firmware_sim.camera.scene import draw, read_depth_cm
from schemas import DeviceInfo, DeviceKind, topics
from schemas.images import ImageHeader, encode_image
from tests.edge.test_cameras import WINDOW_POLY, window_is_solid
from tests.servers import Mosquitto, running_mosquitto, wait_for

GW, OTHER = "gw-img", "gw-other"
CAM = Camera.model_validate(
    {"id": "cam-1", "site": "up-1", "url": "http://127.0.0.1:1/", "masks": [WINDOW_POLY]}
)
T0 = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)


class Cloud:
    """Registry + store + receiver on one SQLite file and one image directory."""

    def __init__(self, tmp: Path, port: int) -> None:
        engine = make_engine(f"sqlite:///{tmp / 'akita.db'}")
        create_all(engine)
        self.sessions = make_sessionmaker(engine)
        self.registry = Registry(self.sessions)
        cam = DeviceInfo(device_id="cam-1", kind=DeviceKind("flood_camera"), site="up-1")
        self.registry.provision(GW, [cam])
        self.settings = ImageSettings(dir=tmp / "images")
        self.store = ImageStore(engine, self.sessions, self.settings)
        self.broker = IngestSettings(broker_port=port, group=None)
        self.metrics = Metrics()
        self.receiver: ImageReceiver | None = None

    def start(self) -> None:
        self.receiver = ImageReceiver(
            self.store, self.registry.owned, self.broker, self.settings, self.metrics
        )
        self.receiver.start()
        wait_for(
            "receiver subscribed", lambda: self.receiver is not None and self.receiver.connected
        )

    def stop(self) -> None:
        assert self.receiver is not None
        self.receiver.stop()

    def rows(self) -> list[ImageRow]:
        with self.sessions() as s:
            return list(s.scalars(select(ImageRow).order_by(ImageRow.id)))


def take(spool: ImageSpool, depth_cm: float, at: datetime) -> None:
    """What the gateway's camera service does per picture: mask, scale, spool."""
    jpeg = mask_and_scale(draw(depth_cm).jpeg, CAM)
    spool.add(SpooledImage(seq=0, camera_id=CAM.id, site=CAM.site, taken_at=at.isoformat(),
                           sha256=hashlib.sha256(jpeg).hexdigest(), width=CAM.width,
                           height=CAM.height, jpeg=jpeg))  # fmt: skip


class Gateway:
    """The edge uplink and the image uploader, pumped on their own event loop."""

    def __init__(self, tmp: Path, port: int) -> None:
        self.spool = ImageSpool(tmp / "gw-images.db", max_bytes=50_000_000)
        edge = EdgeConfig.model_validate(
            {"gateway": {"id": GW, "spool_path": str(tmp / "s.db")},
             "mqtt": {"host": "127.0.0.1", "port": port}}
        )  # fmt: skip
        self._edge = edge
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    async def _run(self) -> None:
        uplink = Uplink(self._edge, on_ack=lambda mid: None, on_state=lambda up: None)
        uplink.start()
        uploader = ImageUploader(self.spool, uplink, GW)
        while not self._stop.is_set():
            uploader.pump()
            await asyncio.sleep(0.02)
        await uplink.stop()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    (tmp_path / "mq").mkdir()
    with running_mosquitto(tmp_path / "mq") as m:
        yield m


def test_every_image_arrives_once_in_order_across_a_receiver_outage(
    tmp_path: Path, broker: Mosquitto
) -> None:
    cloud = Cloud(tmp_path, broker.port)
    cloud.start()
    gw = Gateway(tmp_path, broker.port)
    # depths repeat (i % 4): unchanged scenes give byte-identical pictures under new seqs
    depths = [float(10 * (i % 4)) for i in range(15)]
    try:
        for i in range(5):
            take(gw.spool, depths[i], T0 + timedelta(seconds=30 * i))
        wait_for("first five stored", lambda: len(cloud.rows()) == 5)
        cloud.stop()  # the cloud is down; the gateway keeps taking pictures
        for i in range(5, 15):
            take(gw.spool, depths[i], T0 + timedelta(seconds=30 * i))
        # the gateway deleted each at the broker's PUBACK: now only the broker holds them
        wait_for("gateway spool drained into the broker", lambda: gw.spool.waiting() == 0)
        assert len(cloud.rows()) == 5
        cloud.start()
        wait_for("all fifteen stored", lambda: len(cloud.rows()) == 15)
    finally:
        gw.close()
        cloud.stop()
    rows = cloud.rows()
    assert [r.seq for r in rows] == list(range(1, 16))  # once each, stored in the order taken
    assert [r.taken_at for r in rows] == sorted(r.taken_at for r in rows)
    assert len({r.sha256 for r in rows}) == 4  # one file per distinct picture
    for row, depth in zip(rows, depths, strict=True):
        path = cloud.store.files.path(row.sha256)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        img = Image.open(io.BytesIO(path.read_bytes()))
        assert window_is_solid(img) and not img.getexif() and "exif" not in img.info
        assert abs(read_depth_cm(img) - depth) <= 2.0  # the picture is the one taken
    assert stat.S_IMODE(cloud.settings.dir.stat().st_mode) == 0o700
    assert cloud.metrics.value("akita_images_total", result="stored") == 15


def _publish(port: int, topic: str, payload: bytes) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{topic.split('/')[2]}")
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(topic, payload, qos=1).wait_for_publish(10)
    c.loop_stop()
    c.disconnect()


def _payload(gateway: str, seq: int, depth: float) -> bytes:
    jpeg = mask_and_scale(draw(depth).jpeg, CAM)
    header = ImageHeader(
        gateway_id=gateway, camera_id="cam-1", site="up-1", seq=seq,
        taken_at=T0 + timedelta(seconds=seq), size=len(jpeg),
        sha256=hashlib.sha256(jpeg).hexdigest(), width=640, height=360,
    )  # fmt: skip
    return encode_image(header, jpeg)


class DeadLetters:
    def __init__(self, port: int) -> None:
        self.got: list[dict[str, Any]] = []
        self._c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dl-watch")
        self._c.on_message = lambda _c, _u, m: self.got.append(json.loads(m.payload))
        self._c.connect("127.0.0.1", port)
        self._c.subscribe("akita/v1/deadletter/#", qos=1)
        self._c.loop_start()

    def close(self) -> None:
        self._c.loop_stop()
        self._c.disconnect()


def test_a_resend_is_kept_once_and_another_gateways_camera_is_refused(
    tmp_path: Path, broker: Mosquitto
) -> None:
    cloud = Cloud(tmp_path, broker.port)
    watch = DeadLetters(broker.port)
    cloud.start()
    try:
        good = _payload(GW, 1, 20.0)
        _publish(broker.port, topics.image(GW), good)
        _publish(broker.port, topics.image(GW), good)  # the re-send after a lost PUBACK
        _publish(broker.port, topics.image(OTHER), _payload(OTHER, 1, 20.0))
        wait_for("the refusal", lambda: len(watch.got) == 1)
        wait_for(
            "the re-send judged",
            lambda: cloud.metrics.value("akita_images_total", result="duplicate") == 1,
        )
    finally:
        cloud.stop()
        watch.close()
    assert [(r.gateway_id, r.seq) for r in cloud.rows()] == [(GW, 1)]
    letter = watch.got[0]
    assert letter["topic"] == topics.image(OTHER)
    assert "camera_id: 'cam-1' is not a device of gateway 'gw-other'" in letter["reason"]
    assert cloud.metrics.value("akita_ingest_dead_letters_total") == 1
