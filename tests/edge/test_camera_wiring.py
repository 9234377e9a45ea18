"""The cameras wired into the gateway (issue 18): the ``[cameras]`` section of the edge
TOML, the agent running the camera service on its own uplink, the cameras in the meta and
one ``flood_camera`` reading per image in the telemetry, over a simulated camera on real
HTTP and a real Mosquitto.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from PIL import Image

from edge.agent import Agent
from edge.cameras.config import Cameras
from edge.cameras.wiring import GatewayCameras, reading_body
from edge.config import EdgeConfig, load_config
from edge.errors import ConfigError
from firmware_sim.camera.scene import WINDOW, read_depth_cm
from firmware_sim.camera.server import CameraServer
from schemas.codec import decode_batch
from schemas.images import decode_image
from tests.edge.test_cameras import window_is_solid
from tests.servers import running_mosquitto, wait_for

GW = "gw-camwire"
SAMPLE = Path(__file__).parents[2] / "deploy" / "edge" / "flood_camera.toml"
WINDOW_MASK = [[WINDOW[0], WINDOW[1]], [WINDOW[2], WINDOW[1]], [WINDOW[2], WINDOW[3]],
               [WINDOW[0], WINDOW[3]]]  # fmt: skip


def _toml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "edge.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_the_sample_loads_and_its_camera_is_a_device_of_the_meta() -> None:
    from edge.uplink import gateway_meta

    cfg = load_config(SAMPLE)
    assert cfg.cameras is not None
    sensor, cam = cfg.devices[0], cfg.cameras.cameras[0]
    assert cam.site == sensor.site  # the sensor's depth sets this camera's pace
    kinds = {d.device_id: d.kind.value for d in gateway_meta(cfg).devices}
    assert kinds == {sensor.id: "flood_sensor", cam.id: "flood_camera"}


def test_a_bad_camera_field_names_file_line_and_column(tmp_path: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8").replace(
        "alert_interval_s = 30.0", "alert_interval_s = -1"
    )
    with pytest.raises(ConfigError) as err:
        load_config(_toml(tmp_path, text))
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "alert_interval_s = -1" in t)
    assert f"edge.toml:{line}:3: cameras.cameras.0.alert_interval_s" in str(err.value)
    assert "greater than 0" in str(err.value) and "(got -1)" in str(err.value)


def test_a_camera_with_a_device_id_is_refused_at_its_line(tmp_path: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8").replace(
        'id = "cam-araya-underpass"', 'id = "fs-araya-underpass"'
    )
    with pytest.raises(ConfigError) as err:
        load_config(_toml(tmp_path, text))
    lines = text.splitlines()
    start = lines.index("  [[cameras.cameras]]")
    line = next(i for i, t in enumerate(lines[start:], start + 1) if "fs-araya-underpass" in t)
    assert f"edge.toml:{line}:3:" in str(err.value)
    assert "'fs-araya-underpass' is also a [[devices]] id" in str(err.value)


def test_a_flood_sensor_depth_sets_the_site_pace_other_kinds_do_not(tmp_path: Path) -> None:
    cfg = Cameras.model_validate(
        {"spool_path": str(tmp_path / "i.db"),
         "cameras": [{"id": "cam-1", "site": "新屋アンダーパス", "url": "http://127.0.0.1:9/"}]}
    )  # fmt: skip

    class Never:
        connected = False

        def publish_image(self, payload: bytes, on_ack: Any) -> None:
            raise AssertionError("not connected")

    async def main() -> tuple[bool, bool, bool]:
        cams = GatewayCameras(cfg, GW, Never(), now=lambda: 0.0, emit=lambda b: None)
        stages = cams.service.stages
        cams.observe("water_block", "新屋アンダーパス", "wb-1", {"depth": 50.0})
        other = stages.at_caution("新屋アンダーパス")
        cams.observe("flood_sensor", "新屋アンダーパス", "fs-1", {"depth": 12.0})
        up = stages.at_caution("新屋アンダーパス")
        cams.observe("flood_sensor", "新屋アンダーパス", "fs-1", {"rain_intensity": 3.0})
        kept = stages.at_caution("新屋アンダーパス")  # a reading without depth changes nothing
        cams.service.spool.close()
        return other, up, kept

    assert asyncio.run(main()) == (False, True, True)


def test_reading_body_refuses_a_bad_hash() -> None:
    with pytest.raises(ValueError, match="sha256"):
        reading_body("cam-1", {"image_seq": 1, "size": 10, "sha256": "xyz"}, 0.0)


class Collector:
    """Everything under the gateway's prefix, by channel."""

    def __init__(self, port: int) -> None:
        self.got: dict[str, list[bytes]] = {}
        self._lock = threading.Lock()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="camwire-collector")
        self.c.on_message = self._msg
        self.c.connect("127.0.0.1", port)
        self.c.subscribe(f"akita/v1/{GW}/#", qos=1)
        self.c.loop_start()

    def _msg(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.got.setdefault(msg.topic.rsplit("/", 1)[1], []).append(bytes(msg.payload))

    def of(self, channel: str) -> list[bytes]:
        with self._lock:
            return list(self.got.get(channel, []))

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def _camera_readings(batches: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for payload in batches:
        for r in decode_batch(payload).readings:
            if r.kind == "flood_camera":
                out.append(json.loads(r.model_dump_json()))
    return out


def test_the_agent_runs_its_cameras_on_its_uplink(tmp_path: Path) -> None:
    sim = CameraServer(lambda: 24.0, auth="basic").start()
    (tmp_path / "mq").mkdir()
    with running_mosquitto(tmp_path / "mq") as broker:
        collector = Collector(broker.port)
        cfg = EdgeConfig.model_validate(
            {"gateway": {"id": GW, "spool_path": str(tmp_path / "s.db"),
                         "batch_max_delay_s": 0.2},
             "mqtt": {"host": "127.0.0.1", "port": broker.port},
             "cameras": {"spool_path": str(tmp_path / "images.db"), "cameras": [
                 {"id": "cam-1", "site": "up-1", "url": sim.url, "auth": "basic",
                  "username": "admin", "password": "sim-pass", "interval_s": 0.5,
                  "alert_interval_s": 0.5, "masks": [WINDOW_MASK]}]}}
        )  # fmt: skip

        async def main() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(Agent(cfg).run(stop))
            await asyncio.to_thread(
                wait_for,
                "3 images and their readings",
                lambda: (
                    len(collector.of("image")) >= 3
                    and len(_camera_readings(collector.of("telemetry"))) >= 3
                ),
            )
            stop.set()
            await task

        try:
            asyncio.run(main())
            meta = json.loads(collector.of("meta")[-1])
        finally:
            collector.close()
            sim.stop()
    assert {"device_id": "cam-1", "kind": "flood_camera", "site": "up-1"}.items() <= next(
        d for d in meta["devices"] if d["device_id"] == "cam-1"
    ).items()
    images = {}
    for payload in collector.of("image"):
        header, jpeg = decode_image(payload)
        assert header.gateway_id == GW and header.camera_id == "cam-1"
        img = Image.open(io.BytesIO(jpeg))
        assert window_is_solid(img) and not img.getexif()
        assert read_depth_cm(img) == pytest.approx(24.0, abs=1.0)
        images[header.seq] = (header.size, hashlib.sha256(jpeg).hexdigest())
    readings = _camera_readings(collector.of("telemetry"))
    for r in readings:
        assert r["device_id"] == "cam-1"
        seq = r["values"]["image_seq"]
        if seq in images:  # the last image may still be in the spool when the agent stops
            assert (r["values"]["size"], r["values"]["sha256"]) == images[seq]
    assert len({r["values"]["image_seq"] for r in readings} & set(images)) >= 3
