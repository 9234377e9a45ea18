"""The underpass scene, drawn so that the water depth can be read back from the pixels.

Geometry is fixed in the camera's own frame (1280×720): a depth gauge post stands on the
road at x = GAUGE_X; the road surface under it is at GROUND_Y and every centimetre of water
raises the surface by PX_PER_CM pixels. A house window and a number-plate-like rectangle
sit in fixed places so privacy masks can be configured (and checked) in frame pixels.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageDraw

WIDTH, HEIGHT = 1280, 720
GROUND_Y = 660  # road surface at the gauge, frame pixels
PX_PER_CM = 4.0  # 100 cm of water reaches y = 260
GAUGE_X = (600, 640)  # the gauge post: nothing else is drawn over this column band
WATER = (30, 70, 200)  # saturated blue: a pixel test tells it from road, wall and sky
ROAD = (90, 90, 90)
WALL = (200, 180, 150)
SKY = (170, 200, 230)
GAUGE = (250, 250, 250)
# the resident's window (to be masked at the edge) and the plate (not masked, road area)
WINDOW = (80, 120, 300, 300)
PLATE = (900, 600, 1060, 650)


@dataclass(frozen=True)
class Frame:
    jpeg: bytes
    depth_cm: float


def water_top_y(depth_cm: float) -> int:
    """Frame row of the water surface for a depth (clamped to the frame)."""
    return max(0, min(GROUND_Y, round(GROUND_Y - max(0.0, depth_cm) * PX_PER_CM)))


def draw(depth_cm: float, *, quality: int = 85, with_exif: bool = True) -> Frame:
    """The scene at ``depth_cm`` as a JPEG; real cameras embed EXIF, so this one does too."""
    img = Image.new("RGB", (WIDTH, HEIGHT), SKY)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 60, WIDTH, 420), fill=WALL)  # the houses along the road
    d.rectangle(WINDOW, fill=(240, 220, 120))
    # a person behind the window: what the mask must hide
    x0, y0, _x1, y1 = WINDOW
    d.ellipse((x0 + 80, y0 + 30, x0 + 140, y0 + 90), fill=(120, 60, 40))
    d.rectangle((x0 + 70, y0 + 90, x0 + 150, y1), fill=(40, 40, 120))
    d.rectangle((0, 420, WIDTH, HEIGHT), fill=ROAD)
    d.rectangle((GAUGE_X[0], 200, GAUGE_X[1], GROUND_Y), fill=GAUGE)
    for cm in range(0, 101, 10):  # gauge marks every 10 cm, outside the sampled column
        y = water_top_y(cm)
        d.line((GAUGE_X[1], y, GAUGE_X[1] + 15, y), fill=(0, 0, 0), width=2)
    d.rectangle((860, 520, 1180, 660), fill=(160, 20, 20))  # a car
    d.rectangle(PLATE, fill=(255, 255, 255), outline=(20, 120, 20), width=3)
    d.text((PLATE[0] + 20, PLATE[1] + 15), "AKITA 12-34", fill=(0, 0, 0))
    top = water_top_y(depth_cm)
    if top < GROUND_Y:
        d.rectangle((0, top, WIDTH, HEIGHT), fill=WATER)
    out = io.BytesIO()
    exif = Image.Exif()
    if with_exif:
        exif[0x010F] = "AkitaSim"  # Make
        exif[0x0110] = "UnderpassCam-1"  # Model
        exif[0x0132] = "2025:07:01 12:00:00"  # DateTime
    img.save(out, "JPEG", quality=quality, exif=exif.tobytes() if with_exif else b"")
    return Frame(out.getvalue(), depth_cm)


def read_depth_cm(img: Image.Image) -> float:
    """The depth shown in a picture of the scene at any scale: the water's top on the gauge.

    Reads the gauge column from the road upward while pixels are water-blue; tests use it
    to check that a stored image matches the reading it was taken with.
    """
    rgb = img.convert("RGB")
    sx, sy = rgb.width / WIDTH, rgb.height / HEIGHT
    x = round((GAUGE_X[0] + GAUGE_X[1]) / 2 * sx)
    ground = round(GROUND_Y * sy) - 2  # just above the road edge, clear of blending
    top = None
    for y in range(ground, -1, -1):
        r, g, b = rgb.getpixel((x, y))  # type: ignore[misc]
        if not (b > 150 and r < 90 and g < 120):
            break
        top = y
    if top is None:
        return 0.0
    return (GROUND_Y - (top - 0.5) / sy) / PX_PER_CM
