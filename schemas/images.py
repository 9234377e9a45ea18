"""The image message: a camera picture on ``akita/v1/<gateway>/image``, QoS 1.

Payload = one JSON header line (:class:`ImageHeader`), ``\\n``, then the JPEG bytes. The
header's ``seq`` is the gateway's image counter: the cloud stores an image once per
(gateway, seq) and the gateway re-sends byte-identical messages after an outage, so a
repeat is recognised, never stored twice. Telemetry carries only the small reading
(camera, time, size, hash), never the picture.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

MAX_IMAGE_BYTES = 2_000_000  # a 640×360 JPEG is ~30-60 kB; anything near this is a mistake


class ImageHeader(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway_id: str
    camera_id: str
    site: str
    seq: int = Field(ge=1)
    taken_at: AwareDatetime
    size: int = Field(ge=1, le=MAX_IMAGE_BYTES)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    width: int = Field(ge=1)
    height: int = Field(ge=1)


def encode_image(header: ImageHeader, jpeg: bytes) -> bytes:
    return header.model_dump_json().encode() + b"\n" + jpeg


def decode_image(payload: bytes) -> tuple[ImageHeader, bytes]:
    """Header and JPEG; ValueError naming what is wrong (size or hash mismatch...)."""
    head, sep, jpeg = payload.partition(b"\n")
    if not sep:
        raise ValueError("image payload: no header line")
    header = ImageHeader.model_validate_json(head)
    if len(jpeg) != header.size:
        raise ValueError(f"image payload: size {len(jpeg)} != header size {header.size}")
    digest = hashlib.sha256(jpeg).hexdigest()
    if digest != header.sha256:
        raise ValueError(f"image payload: sha256 {digest} != header sha256 {header.sha256}")
    return header, jpeg


def taken_at_key(ts: datetime) -> str:
    return ts.isoformat()
