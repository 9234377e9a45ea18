"""What a picture goes through before it may leave the gateway (docs/cameras.md).

Decoded in memory, masked, scaled and re-encoded: the frame the camera sent is never
written to disk, and the JPEG written carries no EXIF, XMP, ICC or comment (Pillow writes
only what it is given, and it is given nothing).
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from edge.cameras.config import Camera


def mask_and_scale(jpeg: bytes, cam: Camera) -> bytes:
    """The publishable JPEG: masks filled in frame pixels, then scaled to width×height."""
    with Image.open(io.BytesIO(jpeg)) as src:
        img = src.convert("RGB")  # a new image: no info dict, no EXIF carried over
    draw = ImageDraw.Draw(img)
    for poly in cam.masks:
        # masked before scaling so the polygon is exactly the configured frame pixels
        draw.polygon([tuple(p) for p in poly], fill=cam.mask_colour)
    if img.size != (cam.width, cam.height):
        img = img.resize((cam.width, cam.height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=cam.jpeg_quality, optimize=True)
    return out.getvalue()
