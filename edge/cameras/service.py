"""The gateway's cameras: one capture loop each, privacy, spool, upload.

Each camera has its own task, so a camera that hangs until its timeout, or answers with
garbage, delays nobody else. A camera's failure is logged once at error level with the
reason (then at debug until it recovers) and kept in ``status``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from edge.cameras.capture import CaptureError, capture
from edge.cameras.config import Camera, Cameras
from edge.cameras.privacy import mask_and_scale
from edge.cameras.schedule import SiteStages, due
from edge.cameras.spool import ImageSpool, SpooledImage
from edge.cameras.uploader import ImagePublisher, ImageUploader

log = logging.getLogger("akita.edge.cameras")

# Pillow work runs on one thread of its own, not on asyncio's default pool: glibc gives
# each thread that allocates its own malloc arena (up to 8 per core), and decode buffers
# spread over many threads stay resident in each arena (docs/cameras.md, bench).
IMAGE_THREADS = 1

# what the telemetry carries per image: the picture itself travels on the image topic
ImageReading = Callable[[str, dict[str, object], float], None]


@dataclass
class CameraStatus:
    ok: bool | None = None  # None: not tried yet
    reason: str | None = None
    taken: int = 0
    failures: int = 0
    last_taken: float | None = None
    reasons: list[str] = field(default_factory=list)  # distinct reasons seen, in order


class CameraService:
    def __init__(
        self,
        config: Cameras,
        gateway_id: str,
        publisher: ImagePublisher,
        *,
        now: Callable[[], float],
        on_reading: ImageReading | None = None,
        tick_s: float = 0.05,
    ) -> None:
        self.config = config
        self.stages = SiteStages(config.caution_cm, config.hysteresis_cm)
        self.spool = ImageSpool(config.spool_path, max_bytes=config.spool_max_bytes)
        self.uploader = ImageUploader(self.spool, publisher, gateway_id)
        self.status = {c.id: CameraStatus() for c in config.cameras}
        self._now = now
        self._on_reading = on_reading
        self._tick_s = tick_s
        self._images: ThreadPoolExecutor | None = None  # set while run() runs
        self._client: httpx.AsyncClient | None = None  # set while run() runs
        self._cams = {c.id: c for c in config.cameras}

    def observe_depth(self, site: str, sensor_id: str, depth_cm: float) -> None:
        """A flood sensor's reading (the local rule behind the fast cadence)."""
        self.stages.observe(site, sensor_id, depth_cm)

    async def run(self, stop: asyncio.Event) -> None:
        limits = httpx.Limits(max_connections=len(self.config.cameras) or 1)
        self._images = ThreadPoolExecutor(IMAGE_THREADS, thread_name_prefix="akita-camera-image")
        try:
            async with httpx.AsyncClient(limits=limits, follow_redirects=False) as client:
                self._client = client
                tasks = [
                    asyncio.create_task(self._loop(client, c, stop)) for c in self.config.cameras
                ]
                tasks.append(asyncio.create_task(self._upload_loop(stop)))
                await stop.wait()
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._client = None
            self._images.shutdown(wait=True)
            self._images = None
            self.spool.close()

    async def _upload_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.uploader.pump()
            await asyncio.sleep(self._tick_s)

    async def _loop(self, client: httpx.AsyncClient, cam: Camera, stop: asyncio.Event) -> None:
        st = self.status[cam.id]
        while not stop.is_set():
            if due(cam, self.stages, st.last_taken, self._now()):
                st.last_taken = self._now()  # a failed try waits a full interval too
                await self.take(client, cam)
            await asyncio.sleep(self._tick_s)

    def has_camera(self, camera_id: str) -> bool:
        return camera_id in self._cams

    async def take_now(self, camera_id: str) -> tuple[dict[str, object] | None, str]:
        """A picture at once, out of schedule (a ``snapshot`` command).

        ``(readback, reason)``: the spooled image's ``image_seq``, ``size`` and ``sha256``,
        or None and the capture's reason. The schedule is left as it was.
        """
        cam = self._cams.get(camera_id)
        if cam is None:
            return None, f"no camera {camera_id!r} on this gateway"
        if self._client is None:
            return None, "the camera service is not running"
        try:
            reading = await self._take(self._client, cam)
        except CaptureError as e:
            return None, e.reason
        return reading, f"image seq {reading['image_seq']} spooled"

    async def take(self, client: httpx.AsyncClient, cam: Camera) -> bool:
        """One snapshot through privacy into the spool; False (and the reason) when bad."""
        try:
            await self._take(client, cam)
        except CaptureError:
            return False
        return True

    async def _take(self, client: httpx.AsyncClient, cam: Camera) -> dict[str, object]:
        ts = self._now()
        try:
            raw = await capture(client, cam)
            # Pillow work off the loop (polls and the uplink keep their timing), on the
            # service's own image thread when running (see IMAGE_THREADS)
            loop = asyncio.get_running_loop()
            jpeg = await loop.run_in_executor(self._images, mask_and_scale, raw, cam)
        except CaptureError as e:
            self._failed(cam, e.reason)
            raise
        del raw  # the unmasked frame is never kept
        return self._stored(cam, jpeg, ts)

    def _stored(self, cam: Camera, jpeg: bytes, ts: float) -> dict[str, object]:
        st = self.status[cam.id]
        digest = hashlib.sha256(jpeg).hexdigest()
        taken_at = datetime.fromtimestamp(ts, UTC).isoformat()
        img = SpooledImage(0, cam.id, cam.site, taken_at, digest, cam.width, cam.height, jpeg)
        seq, dropped = self.spool.add(img)
        if dropped:
            log.warning("image_spool_full dropped=%s total_dropped=%s", dropped, self.spool.dropped)
        if st.ok is False:
            log.info("camera_ok camera=%s", cam.id)
        st.ok, st.reason = True, None
        st.taken += 1
        reading: dict[str, object] = {"image_seq": seq, "size": len(jpeg), "sha256": digest}
        if self._on_reading is not None:
            self._on_reading(cam.id, reading, ts)
        return reading

    def _failed(self, cam: Camera, reason: str) -> None:
        st = self.status[cam.id]
        st.failures += 1
        if reason not in st.reasons:
            st.reasons.append(reason)
        level = logging.DEBUG if st.ok is False and st.reason == reason else logging.ERROR
        log.log(level, "camera_failed camera=%s reason=%s", cam.id, reason)
        st.ok, st.reason = False, reason
