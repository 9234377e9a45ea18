"""The cloud's image receiver on the shipped broker config with its own account
``akita-images`` (deploy/mosquitto/roles, make-service-credential.sh): it logs in over
TLS, stores a gateway's masked image, and dead-letters one the gateway may not send."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
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
from firmware_sim.camera.scene import draw, read_depth_cm
from schemas import DeviceInfo, DeviceKind
from schemas.images import ImageHeader, encode_image
from tests.deploy.test_mosquitto_deploy import Client
from tests.edge.test_cameras import WINDOW_POLY, window_is_solid
from tests.servers import DeployedMosquitto, running_deployed_mosquitto, wait_for

CAM = Camera.model_validate(
    {"id": "cam-a", "site": "up-1", "url": "http://127.0.0.1:1/", "masks": [WINDOW_POLY]}
)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[DeployedMosquitto]:
    with running_deployed_mosquitto(tmp_path) as b:
        for name in ("gwA", "gwB", "akita-images", "akita-cloud"):
            b.credential(name)
        yield b


def _image(gateway: str, camera: str, seq: int, depth: float) -> bytes:
    jpeg = mask_and_scale(draw(depth).jpeg, CAM)
    header = ImageHeader(
        gateway_id=gateway, camera_id=camera, site="up-1", seq=seq,
        taken_at=datetime(2025, 7, 1, 12, seq, tzinfo=UTC), size=len(jpeg),
        sha256=hashlib.sha256(jpeg).hexdigest(), width=CAM.width, height=CAM.height,
    )  # fmt: skip
    return encode_image(header, jpeg)


def test_receiver_logs_in_as_akita_images_and_stores_a_gateways_image(
    broker: DeployedMosquitto, tmp_path: Path
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'akita.db'}")
    create_all(engine)
    sessions = make_sessionmaker(engine)
    registry = Registry(sessions)
    registry.provision("gwA", [DeviceInfo(device_id="cam-a", kind=DeviceKind("flood_camera"))])
    registry.provision("gwB", [DeviceInfo(device_id="cam-b", kind=DeviceKind("flood_camera"))])
    settings = ImageSettings(
        dir=tmp_path / "images", username="akita-images", password=broker.passwords["akita-images"]
    )
    tls = IngestSettings(
        broker_port=broker.tls_port, tls=True, ca_file=broker.ca, group=None,
        username="akita-ingest-1",
    )  # fmt: skip
    store = ImageStore(engine, sessions, settings)
    receiver = ImageReceiver(store, registry.owned, tls, settings, Metrics())
    staff = Client(broker, "akita-cloud")  # reads dead letters
    assert not staff.subscribe("akita/v1/deadletter/#").is_failure
    gw_a = Client(broker, "gwA")
    receiver.start()
    try:
        wait_for("the receiver's session", lambda: receiver.connected)
        assert not gw_a.publish("akita/v1/gwA/image", _image("gwA", "cam-a", 1, 22.0)).is_failure
        # gwA's own prefix, but gwB's camera: the broker lets it through, the receiver refuses
        assert not gw_a.publish("akita/v1/gwA/image", _image("gwA", "cam-b", 2, 9.0)).is_failure
        wait_for("the dead letter", lambda: staff.messages != [])
        with sessions() as s:
            rows = list(s.scalars(select(ImageRow)))
        assert [(r.gateway_id, r.camera_id, r.seq) for r in rows] == [("gwA", "cam-a", 1)]
        latest = store.latest("cam-a")
        assert latest is not None
        stored = Image.open(io.BytesIO(store.read(latest)))
        assert abs(read_depth_cm(stored) - 22.0) <= 2.0 and window_is_solid(stored)
        [(topic, payload)] = staff.messages
        assert topic == "akita/v1/deadletter/gwA" and "cam-b" in json.loads(payload)["reason"]
    finally:
        receiver.stop()
        for c in (staff, gw_a):
            c.close()
