"""Sends spooled images oldest first, one in flight, deleting each at its PUBACK.

Why MQTT on the gateway's own prefix rather than HTTPS: the gateway already holds one
authenticated TLS session whose ACL confines it to ``akita/v1/<gateway>/``, so the cloud
knows the sender from the topic without a second credential, a second listener open to
the field, or a second reconnect policy. QoS 1 + the spool give at-least-once; the
header's ``seq`` makes a re-send recognisable (the cloud keeps one per gateway and seq),
so each image is stored exactly once. One image in flight keeps time order across
reconnects (a clean session drops unacknowledged messages; the next is sent only after
the previous one's PUBACK).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from edge.cameras.spool import ImageSpool, SpooledImage
from schemas.images import ImageHeader, encode_image

log = logging.getLogger("akita.edge.cameras")


class ImagePublisher(Protocol):
    connected: bool

    def publish_image(self, payload: bytes, on_ack: Callable[[], None]) -> None: ...


class ImageUploader:
    def __init__(
        self,
        spool: ImageSpool,
        publisher: ImagePublisher,
        gateway_id: str,
        *,
        resend_after_s: float = 30.0,
    ) -> None:
        self.spool = spool
        self.publisher = publisher
        self.gateway_id = gateway_id
        # a link that drops and comes back between two turns loses the PUBACK silently
        self.resend_after_s = resend_after_s
        self.sent = 0  # PUBACKs received
        self._inflight: int | None = None
        self._inflight_at = 0.0

    def payload(self, img: SpooledImage) -> bytes:
        header = ImageHeader(
            gateway_id=self.gateway_id,
            camera_id=img.camera_id,
            site=img.site,
            seq=img.seq,
            taken_at=datetime.fromisoformat(img.taken_at),
            size=len(img.jpeg),
            sha256=img.sha256,
            width=img.width,
            height=img.height,
        )
        return encode_image(header, img.jpeg)

    def pump(self) -> None:
        """Called on each loop turn: (re)send the oldest image when nothing is in flight."""
        up = self.publisher.connected
        stale = time.monotonic() - self._inflight_at > self.resend_after_s
        if not up or stale:
            # a clean session forgets what it had in flight: send it again after reconnect
            self._inflight = None
        if not up or self._inflight is not None:
            return
        img = self.spool.oldest()
        if img is None:
            return
        self._inflight = img.seq
        self._inflight_at = time.monotonic()
        self.publisher.publish_image(self.payload(img), functools.partial(self._acked, img.seq))

    def _acked(self, seq: int) -> None:
        self.spool.ack(seq)
        self.sent += 1
        if self._inflight == seq:
            self._inflight = None
        log.debug("image_sent seq=%s", seq)
