"""How the gateway's agent holds its cameras: config checks, meta, depths in, readings out.

Kept out of ``edge/agent.py`` so the agent only starts, stops and feeds a
:class:`GatewayCameras`; everything camera-specific stays in ``edge/cameras``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from edge.cameras.config import Cameras
from edge.cameras.service import CameraService
from edge.cameras.uploader import ImagePublisher
from edge.clock import iso_ms
from schemas.kinds.flood_camera import KIND as FLOOD_CAMERA

log = logging.getLogger("akita.edge.cameras")

DEPTH_KIND = "flood_sensor"  # whose ``depth`` drives the local 注意 rule


def reading_body(camera_id: str, reading: dict[str, object], ts: float) -> bytes:
    """The telemetry reading for one image (camera, time, size, hash; never the picture)."""
    values = FLOOD_CAMERA.values.model_validate(reading)
    doc = {
        "device_id": camera_id,
        "kind": FLOOD_CAMERA.name,
        "ts": iso_ms(ts),
        "values": values.present(),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


class GatewayCameras:
    """The agent's cameras: started with the uplink, stopped before it."""

    def __init__(
        self,
        config: Cameras,
        gateway_id: str,
        publisher: ImagePublisher,
        *,
        now: Callable[[], float],
        emit: Callable[[bytes], None],
    ) -> None:
        self._emit = emit
        self.service = CameraService(
            config, gateway_id, publisher, now=now, on_reading=self._reading
        )
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.service.run(self._stop))
        log.info("cameras_started cameras=%d", len(self.service.config.cameras))

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    def has_camera(self, device_id: str) -> bool:
        """The downlink asks: is this device one of our cameras (edge/commands.py)."""
        return self.service.has_camera(device_id)

    async def snapshot_now(self, device_id: str) -> tuple[dict[str, Any] | None, str]:
        """A ``snapshot`` command: a picture at once, spooled; its seq, or the reason."""
        readback, reason = await self.service.take_now(device_id)
        return (dict(readback) if readback is not None else None), reason

    def observe(self, kind: str, site: str | None, device_id: str, values: dict[str, Any]) -> None:
        """A trusted reading: a flood sensor's depth sets its site's camera cadence."""
        depth = values.get("depth")
        if kind != DEPTH_KIND or site is None or not isinstance(depth, int | float):
            return
        self.service.observe_depth(site, device_id, float(depth))

    def _reading(self, camera_id: str, reading: dict[str, object], ts: float) -> None:
        self._emit(reading_body(camera_id, reading, ts))
