"""Checks an uploaded photo by its content (Pillow), never by its name or declared type,
reads the EXIF GPS position when the camera recorded one, and keeps only the pixels.

A phone's photo carries the owner's name, the camera's serial number and where it was
taken (EXIF, XMP, comments, ICC profile text). Only re-encoded pixel data is stored and
served; the GPS position is handed to the caller, which uses it only with consent.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from cloud.citizen.errors import PhotoError

MAX_PHOTO_BYTES = 5 * 1024 * 1024
ALLOWED = {"JPEG": "image/jpeg", "PNG": "image/png"}
_GPS_IFD = 0x8825
# refuse decompression bombs well before Pillow's own (warning-only) limit
_MAX_PIXELS = 50_000_000


@dataclass(frozen=True, slots=True)
class Photo:
    data: bytes  # re-encoded pixels only
    mime: str
    width: int
    height: int
    sha256: str
    gps: tuple[float, float] | None


def _dms(value: object) -> float:
    d, m, s = (float(x) for x in value)  # type: ignore[attr-defined]
    return d + m / 60 + s / 3600


def _gps(img: Image.Image) -> tuple[float, float] | None:
    try:
        gps = img.getexif().get_ifd(_GPS_IFD)
    except (AttributeError, KeyError, ValueError, TypeError, SyntaxError):
        return None
    try:
        lat = _dms(gps[2]) * (-1 if str(gps.get(1, "N")).upper().startswith("S") else 1)
        lon = _dms(gps[4]) * (-1 if str(gps.get(3, "E")).upper().startswith("W") else 1)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    return round(lat, 7), round(lon, 7)


def _pixels_only(img: Image.Image) -> Image.Image:
    """A new image holding only ``img``'s pixels, turned upright (EXIF orientation applied
    before the tag is dropped) and in a mode JPEG/PNG can store without a palette."""
    upright = ImageOps.exif_transpose(img)
    if upright.mode not in ("L", "RGB", "RGBA", "LA"):
        has_alpha = "transparency" in upright.info or upright.mode in ("PA", "RGBa")
        upright = upright.convert("RGBA" if has_alpha else "RGB")
    # frombytes: a fresh image with an empty info dict, so nothing rides along on save
    return Image.frombytes(upright.mode, upright.size, upright.tobytes())


def strip_metadata(data: bytes) -> tuple[bytes, int, int]:
    """``data`` re-encoded from its pixels only (same format); returns (bytes, w, h)."""
    with Image.open(io.BytesIO(data)) as img:
        fmt = img.format or ""
        clean = _pixels_only(img)
    buf = io.BytesIO()
    if fmt == "PNG":
        clean.save(buf, "PNG", optimize=False)
    else:
        if clean.mode in ("RGBA", "LA"):
            clean = clean.convert("RGB" if clean.mode == "RGBA" else "L")
        clean.save(buf, "JPEG", quality=90)
    return buf.getvalue(), clean.width, clean.height


def has_metadata(data: bytes) -> bool:
    """Whether stored bytes still carry metadata (photos stored by earlier versions)."""
    with Image.open(io.BytesIO(data)) as img:
        keys = set(img.info) - {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi"}
        return bool(keys) or len(img.getexif()) > 0


def check_photo(data: bytes) -> Photo:
    """Validate ``data``; raises :class:`PhotoError` with a Japanese message naming the cause."""
    if len(data) > MAX_PHOTO_BYTES:
        raise PhotoError(
            f"写真のサイズが大きすぎます（{len(data) / 1024 / 1024:.1f} MB）。"
            f"{MAX_PHOTO_BYTES // 1024 // 1024} MB 以下にしてください。"
        )
    if not data:
        raise PhotoError("写真のファイルが空です。")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format or ""
                if fmt not in ALLOWED:
                    raise PhotoError(
                        f"写真の形式（{fmt or '不明'}）は受け付けていません。"
                        "JPEG または PNG の画像を選んでください。"
                    )
                width, height = img.size
                if width * height > _MAX_PIXELS:
                    raise PhotoError("写真の画素数が大きすぎます。縮小してから送ってください。")
                gps = _gps(img)
            with Image.open(io.BytesIO(data)) as img2:
                img2.verify()  # catches truncated / corrupt files
            clean, width, height = strip_metadata(data)
    except PhotoError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise PhotoError(
            "写真として読み取れないファイルです。JPEG または PNG の画像を選んでください。"
        ) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise PhotoError("写真のファイルが壊れているため読み取れません。") from e
    return Photo(
        data=clean,
        mime=ALLOWED[fmt],
        width=width,
        height=height,
        sha256=hashlib.sha256(clean).hexdigest(),
        gps=gps,
    )
