"""What the receiver checks before storing an image; a refusal says which field and why.

The topic names the sender (the broker's ACL confines a gateway to its own prefix), so
the header's gateway must be the topic's, and the camera must be a ``flood_camera``
that gateway owns in the registry: a gateway never files pictures under another's
camera. The bytes must be the JPEG the header describes (size, SHA-256) within the size
bound, and carry no EXIF: the gateway strips it, so EXIF here means a gateway that did
not mask either, and such a picture must not reach a citizen page.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping

from PIL import Image, UnidentifiedImageError
from pydantic import ValidationError

from schemas import topics
from schemas.codec import describe
from schemas.images import ImageHeader, decode_image

CAMERA_KIND = "flood_camera"
HEADER_ALLOWANCE = 4096  # the JSON header line in front of the JPEG

Owned = Callable[[str], Mapping[str, str]]  # gateway -> {device: kind} (Registry.owned)


class ImageRefused(ValueError):
    """The image can never be stored: dead-letter it with ``reason``."""


def topic_gateway(topic: str) -> str:
    parsed = topics.parse(topic)
    if parsed is None or parsed[1] is not topics.Channel.IMAGE:
        raise ImageRefused(f"topic {topic!r} is not akita/v1/<gateway>/image")
    return parsed[0]


def check_image(
    topic: str, payload: bytes, owned: Owned, max_bytes: int
) -> tuple[ImageHeader, bytes]:
    gateway = topic_gateway(topic)
    if len(payload) > max_bytes + HEADER_ALLOWANCE:
        raise ImageRefused(f"payload of {len(payload)} bytes is over images.max_bytes {max_bytes}")
    try:
        header, jpeg = decode_image(payload)
    except ValidationError as exc:
        raise ImageRefused(f"image header: {describe(exc)}") from exc
    except ValueError as exc:
        raise ImageRefused(str(exc)) from exc
    if header.gateway_id != gateway:
        raise ImageRefused(
            f"gateway_id: {header.gateway_id!r} does not match topic gateway {gateway!r}"
        )
    if header.size > max_bytes:
        raise ImageRefused(f"size: {header.size} bytes is over images.max_bytes {max_bytes}")
    _check_owner(gateway, header.camera_id, owned)
    _check_jpeg(header, jpeg)
    return header, jpeg


def _check_owner(gateway: str, camera_id: str, owned: Owned) -> None:
    kind = owned(gateway).get(camera_id)
    if kind is None:
        raise ImageRefused(
            f"camera_id: {camera_id!r} is not a device of gateway {gateway!r} in the registry "
            "(akita cloud device import)"
        )
    if kind != CAMERA_KIND:
        raise ImageRefused(f"camera_id: {camera_id!r} is a {kind}, not a {CAMERA_KIND}")


def _check_jpeg(header: ImageHeader, jpeg: bytes) -> None:
    if not (jpeg.startswith(b"\xff\xd8\xff") and jpeg.rstrip(b"\x00").endswith(b"\xff\xd9")):
        raise ImageRefused("jpeg: no JPEG start/end markers")
    try:
        with Image.open(io.BytesIO(jpeg)) as img:
            fmt, size, has_exif = img.format, img.size, "exif" in img.info
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageRefused(f"jpeg: not a readable JPEG ({exc})") from exc
    if fmt != "JPEG":
        raise ImageRefused(f"jpeg: the picture is {fmt}, not JPEG")
    if size != (header.width, header.height):
        raise ImageRefused(
            f"width/height: header says {header.width}x{header.height}, the JPEG is "
            f"{size[0]}x{size[1]}"
        )
    if has_exif:
        raise ImageRefused("jpeg: carries EXIF metadata (the gateway must strip it)")
