"""Issue 18's first acceptance point, end to end: rising water at the underpass's depth
sensor (simulated Modbus RTU on a pty) and a simulated camera over real HTTP whose scene
shows that water -> the real gateway (Agent with cameras) -> Mosquitto -> the cloud
(ingest to InfluxDB, flood detector, alert, image receiver, resident e-mail to aiosmtpd).

The camera's cadence rises at 注意; the 警戒 e-mail's link, opened in Chromium
(Playwright, Debian's chromium), shows a picture whose water is at the alert's depth
(read from the rendered pixels, ±2 cm); every stored image has a solid masked window and
no EXIF. Waits are bounded conditions, never timed assertions.
"""

from __future__ import annotations

import io
import itertools
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from PIL import Image
from sqlalchemy import select

from cloud.api.app import create_app
from cloud.citizen import subscriptions
from cloud.images.db import ImageLinkRow, ImageRow
from cloud.service import CloudService
from cloud.store import init_db
from edge.agent import Agent
from edge.config import parse_config
from firmware_sim.camera.scene import WINDOW, read_depth_cm
from firmware_sim.camera.server import CameraServer
from schemas.wire import DeviceInfo
from tests.cloud.citizen.conftest import Smtp, make_service, smtp  # noqa: F401
from tests.cloud.citizen.test_browser import CHROMIUM_ARGS
from tests.edge.sign_peers import GW, SENSOR, SIGN, sample_config, underpass_on_a_bus
from tests.edge.test_cameras import window_is_solid
from tests.servers import Influx, Mosquitto, free_port, require_binary, wait_for, wait_port

SITE, AREA, CAM = "新屋アンダーパス", "新屋", "cam-araya"
WINDOW_MASK = [[WINDOW[0], WINDOW[1]], [WINDOW[2], WINDOW[1]], [WINDOW[2], WINDOW[3]],
               [WINDOW[0], WINDOW[3]]]  # fmt: skip
NORMAL_S, ALERT_S = 60.0, 0.5  # the camera's cadence: normal, and at 注意 or above
LINK = re.compile(r"現地の画像（48時間有効）: (\S+)")
TOLERANCE_CM = 2.0


class Scene:
    """The water the camera sees; it rises a moment before the sensor's next poll."""

    depth_cm = 0.0


def _cloud(tmp: Path, smtp: Smtp, mqtt_port: int, store: str, http_port: int) -> CloudService:  # noqa: F811
    svc = make_service(
        tmp, smtp,
        store={"url": store},
        api={"public_url": f"http://127.0.0.1:{http_port}"},
        ingest={"broker_host": "127.0.0.1", "broker_port": mqtt_port, "group": None,
                "client_id": "ingest-camstorm"},
        images={"dir": str(tmp / "images")},
        alerts={"hold_off_s": 0, "min_open_s": 0},
        notify={"recipient_salt": "salt-camera-storm-e2e"},
    )  # fmt: skip
    svc.registry.provision(GW, [
        DeviceInfo(device_id=SENSOR, kind="flood_sensor", site=SITE, area=AREA),  # type: ignore[arg-type]
        DeviceInfo(device_id=SIGN, kind="warning_sign", site=SITE),  # type: ignore[arg-type]
        DeviceInfo(device_id=CAM, kind="flood_camera", site=SITE),  # type: ignore[arg-type]
    ])  # fmt: skip
    form = {"channel": "email", "address": "r@example.jp", "consent": "yes", "area": AREA}
    data = subscriptions.parse_subscription(form, ["flood"], {AREA}, sms_available=False)
    tokens: list[str] = []
    subscriptions.create(svc.sessionmaker, data, tokens.append)
    assert subscriptions.confirm(svc.sessionmaker, tokens[0]) is not None
    return svc


def _serve(svc: CloudService, port: int) -> uvicorn.Server:
    config = uvicorn.Config(create_app(svc), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, name="uvicorn-camstorm", daemon=True).start()
    wait_port(port)
    return server


def _gateway_config(tmp: Path, mqtt_port: int, bus: str, camera_url: str) -> dict[str, Any]:
    cfg = sample_config(tmp, mqtt_port, bus)
    cfg["cameras"] = {"spool_path": str(tmp / "gw-images.db"), "cameras": [
        {"id": CAM, "site": SITE, "url": camera_url, "interval_s": NORMAL_S,
         "alert_interval_s": ALERT_S, "masks": [WINDOW_MASK]}]}  # fmt: skip
    return cfg


class Gateway:
    """The real edge agent on its own thread and event loop."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        import asyncio

        self._asyncio = asyncio
        self._agent = Agent(parse_config(cfg))
        self._ready = threading.Event()
        self._state: dict[str, Any] = {}
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    async def _main(self) -> None:
        self._state["loop"] = self._asyncio.get_running_loop()
        self._state["stop"] = self._asyncio.Event()
        self._ready.set()
        await self._agent.run(self._state["stop"])

    def stop(self) -> None:
        self._state["loop"].call_soon_threadsafe(self._state["stop"].set)
        self._thread.join(15)


def _rows(svc: CloudService) -> list[ImageRow]:
    with svc.sessionmaker() as s:
        return list(s.scalars(select(ImageRow).order_by(ImageRow.taken_at, ImageRow.id)))


def _mails(smtp: Smtp) -> list[str]:  # noqa: F811
    return [smtp.mailbox.text(m) for m in smtp.mailbox.to("r@example.jp")]


@pytest.fixture
def rig(
    tmp_path: Path,
    mosquitto: Mosquitto,
    influx: Influx,
    influx_db: str,
    smtp: Smtp,  # noqa: F811
) -> Iterator[tuple[CloudService, Any, str]]:
    http_port = free_port()
    store = f"influx+http://127.0.0.1:{influx.port}/{influx_db}"
    init_db(store)
    svc = _cloud(tmp_path, smtp, mosquitto.port, store, http_port)
    svc.start()
    server = _serve(svc, http_port)
    camera = CameraServer(lambda: Scene.depth_cm).start()
    try:
        with underpass_on_a_bus() as site:
            gateway = Gateway(_gateway_config(tmp_path, mosquitto.port, site.path, camera.url))
            try:
                yield svc, site, f"http://127.0.0.1:{http_port}"
            finally:
                gateway.stop()
    finally:
        camera.stop()
        server.should_exit = True
        svc.stop()


def _set_water(svc: CloudService, site: Any, cm: float) -> None:
    """The scene first, until a stored picture shows it (the camera must already be at
    its alert cadence); then the sensor's register, so every picture near the stage
    change's reading shows the water the sensor reads."""
    Scene.depth_cm = cm
    wait_for(f"a stored picture at {cm} cm", lambda: _latest_depth(svc) == pytest.approx(
        cm, abs=TOLERANCE_CM), 30)  # fmt: skip
    site.sensor.depth_mm = round(cm * 10)


def _latest_depth(svc: CloudService) -> float | None:
    assert svc.images is not None
    latest = svc.images.store.latest(CAM)
    if latest is None:
        return None
    return read_depth_cm(Image.open(io.BytesIO(svc.images.store.read(latest))))


def test_storm_cameras_speed_up_and_the_warning_mail_shows_the_water(
    rig: tuple[CloudService, Any, str],
    smtp: Smtp,  # noqa: F811
) -> None:
    svc, site, base = rig
    wait_for("the first picture (normal cadence)", lambda: len(_rows(svc)) >= 1, 30)
    before = len(_rows(svc))
    Scene.depth_cm, site.sensor.depth_mm = 15.0, 150  # 注意: the camera is still slow
    wait_for("the 注意 e-mail", lambda: len(_mails(smtp)) >= 1, 30)
    wait_for("six pictures at the alert cadence", lambda: len(_rows(svc)) >= before + 6, 30)
    fast = _rows(svc)[before:]
    gaps = [(b.taken_at - a.taken_at).total_seconds() for a, b in itertools.pairwise(fast)]
    assert gaps and max(gaps) < NORMAL_S / 4, gaps  # the cadence rose well above normal

    _set_water(svc, site, 25.0)  # 警戒
    wait_for("the 警戒 e-mail with its link", lambda: any(LINK.search(m) for m in _mails(smtp)), 30)
    url = next(f.group(1) for m in _mails(smtp) if (f := LINK.search(m)))
    assert url.startswith(base + "/citizen/flood/images/")
    with svc.sessionmaker() as s:
        alert_id = s.scalar(select(ImageLinkRow.alert_id))
    assert alert_id is not None
    alert = svc.alerts.get(alert_id).alert
    assert alert.value is not None and alert.value >= 20

    chromium = require_binary("chromium", "chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            response = page.goto(url)
            assert response is not None and response.status == 200
            img = page.locator("img.road")
            page.wait_for_function("() => document.querySelector('img.road').naturalWidth > 0")
            shot = Image.open(io.BytesIO(img.screenshot()))
        finally:
            browser.close()
    shown = read_depth_cm(shot)
    assert shown == pytest.approx(alert.value, abs=TOLERANCE_CM), (shown, alert.value)

    rows = _rows(svc)
    assert len(rows) >= before + 6 and svc.images is not None
    for row in rows:  # every stored image: masked window solid, no EXIF
        stored = Image.open(io.BytesIO(svc.images.store.files.read(row.sha256)))
        assert window_is_solid(stored), row.id
        assert not stored.getexif() and "exif" not in stored.info, row.id
