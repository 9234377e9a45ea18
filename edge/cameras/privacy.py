"""What a picture goes through before it may leave the gateway (docs/cameras.md).

Decoded in memory, masked, scaled and re-encoded: the frame the camera sent is never
written to disk, and the JPEG written carries no EXIF, XMP, ICC or comment (Pillow writes
only what it is given, and it is given nothing).

A JPEG is decoded directly at the smallest DCT scale (1/2, 1/4 or 1/8) that is still at
least the output size (``Image.draft``): a 1280×720 frame for a 640×360 picture is decoded
at 640×360, a quarter of the pixels, and the full-size frame never exists in memory. The
mask polygons, given in the camera's frame pixels, are scaled by the ratio actually chosen
and their edges are drawn 3 px wide as well, so every decoded pixel that holds any of the
polygon's frame pixels is filled (up to about a pixel more than the polygon, never less).
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFilter

from edge.cameras.config import Camera


def mask_and_scale(jpeg: bytes, cam: Camera) -> bytes:
    """The publishable JPEG: masks filled, then scaled to width×height."""
    with Image.open(io.BytesIO(jpeg)) as src:
        frame_w, frame_h = src.size
        src.draft("RGB", (cam.width, cam.height))  # DCT-scaled decode; no-op if not JPEG
        img = src.convert("RGB")  # a new image: no info dict, no EXIF carried over
    sx, sy = img.width / frame_w, img.height / frame_h
    draw = ImageDraw.Draw(img)
    for poly in cam.masks:
        # masked before any resampling, in the decoded image's pixels
        pts = [(x * sx, y * sy) for x, y in poly]
        draw.polygon(pts, fill=cam.mask_colour)
        draw.line([*pts, pts[0]], fill=cam.mask_colour, width=3, joint="curve")
    if img.size != (cam.width, cam.height):
        img = img.resize((cam.width, cam.height), Image.Resampling.BILINEAR)
    else:
        # the DCT-scaled decode is sharper than the bilinear scaling it replaces; a
        # [1/4 1/2 1/4] smoothing keeps the encoder from ringing into the masked area (the
        # mask's extra pixel border keeps every polygon pixel fully the mask colour)
        img = img.filter(ImageFilter.BoxBlur(0.5))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=cam.jpeg_quality, optimize=True)
    return out.getvalue()
