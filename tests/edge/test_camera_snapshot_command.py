"""Snapshot on demand (issue 18), at the gateway: a ``snapshot`` command on the gateway's
cmd topic of a real Mosquitto makes the real agent take a picture of the simulated camera
at once (its schedule is a day), and the result is ``done`` naming the spooled image's seq,
which then arrives on the image topic; a failing camera gives ``failed`` with the
capture's reason; another action on a camera is ``rejected`` with the reason.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edge.actions import check_command
from edge.agent import Agent
from edge.config import EdgeConfig
from firmware_sim.camera.server import CameraServer
from schemas import topics
from schemas.images import decode_image
from tests.edge.test_camera_wiring import GW, WINDOW_MASK, Collector
from tests.servers import running_mosquitto, wait_for


def _command(device_id: str, action: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "v": 1,
        "id": str(uuid.uuid4()),
        "gateway_id": GW,
        "device_id": device_id,
        "action": action,
        "params": params or {},
        "issued_at": now.isoformat(),
        "expires_at": (now + timedelta(minutes=5)).isoformat(),
        "issuer": "token:test",
    }


def _final(collector: Collector, cid: str) -> dict[str, Any] | None:
    for raw in collector.of("result"):
        r = json.loads(raw)
        if r["id"] == cid and r["state"] not in ("accepted", "executing"):
            return dict(r)
    return None


def test_a_snapshot_command_takes_a_picture_at_once_and_names_its_seq(tmp_path: Path) -> None:
    sim = CameraServer(lambda: 18.0, auth="digest").start()
    (tmp_path / "mq").mkdir()
    with running_mosquitto(tmp_path / "mq") as broker:
        collector = Collector(broker.port)
        cfg = EdgeConfig.model_validate(
            {"gateway": {"id": GW, "spool_path": str(tmp_path / "s.db"),
                         "batch_max_delay_s": 0.2},
             "mqtt": {"host": "127.0.0.1", "port": broker.port},
             "cameras": {"spool_path": str(tmp_path / "images.db"), "cameras": [
                 {"id": "cam-1", "site": "up-1", "url": sim.url, "auth": "digest",
                  "username": "admin", "password": "sim-pass", "interval_s": 86_400,
                  "alert_interval_s": 86_400, "masks": [WINDOW_MASK]}]}}
        )  # fmt: skip
        done_cmd = _command("cam-1", "snapshot")
        bad_action = _command("cam-1", "lamp", {"value": True})
        failing = _command("cam-1", "snapshot")

        def send(cmd: dict[str, Any]) -> None:
            collector.c.publish(topics.command(GW), json.dumps(cmd), qos=1).wait_for_publish(5)

        async def main() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(Agent(cfg).run(stop))
            # the schedule's first picture (at start), then nothing for a day
            await asyncio.to_thread(wait_for, "first image", lambda: len(collector.of("image")))
            assert sim.snapshots == 1
            send(done_cmd)
            send(bad_action)
            await asyncio.to_thread(
                wait_for,
                "two results",
                lambda: _final(collector, done_cmd["id"]) and _final(collector, bad_action["id"]),
            )
            await asyncio.to_thread(
                wait_for, "second image", lambda: len(collector.of("image")) >= 2
            )
            sim.fault = "html"
            send(failing)
            await asyncio.to_thread(wait_for, "failed", lambda: _final(collector, failing["id"]))
            stop.set()
            await task

        try:
            asyncio.run(main())
        finally:
            collector.close()
            sim.stop()

    done = _final(collector, done_cmd["id"])
    assert done is not None and done["state"] == "done", done
    seq = done["readback"]["image_seq"]
    headers = {decode_image(p)[0].seq: decode_image(p)[0] for p in collector.of("image")}
    assert seq in headers and headers[seq].camera_id == "cam-1"
    assert headers[seq].sha256 == done["readback"]["sha256"]
    assert done["reason"] == f"image seq {seq} spooled"
    assert sim.snapshots == 2  # the command's picture, not a scheduled one

    rejected = _final(collector, bad_action["id"])
    assert rejected is not None and rejected["state"] == "rejected"
    assert rejected["reason"] == "unknown action 'lamp' for camera 'cam-1' (accepts: snapshot)"

    failed = _final(collector, failing["id"])
    assert failed is not None and failed["state"] == "failed"
    assert failed["reason"] == "not a JPEG: content-type 'text/html'"


def test_snapshot_is_refused_for_a_device_that_is_not_a_camera() -> None:
    cfg = EdgeConfig.model_validate(
        {"gateway": {"id": GW, "spool_path": "/tmp/unused.db"},
         "mqtt": {"host": "127.0.0.1", "port": 1883},
         "devices": [{"id": "pump-1", "kind": "manhole_pump", "driver": "modbus_tcp",
                      "host": "127.0.0.1", "port": 502, "unit_id": 1,
                      "registers": [{"field": "level", "function": "input", "address": 0,
                                     "type": "uint16"}]}]}
    )  # fmt: skip
    try:
        check_command(cfg.devices[0], "snapshot", {})
    except ValueError as exc:
        reason = str(exc)
    else:
        raise AssertionError("snapshot accepted for a manhole pump")
    assert reason == (
        "action 'snapshot' is for flood_camera devices; 'pump-1' is a manhole_pump (accepts: none)"
    )
