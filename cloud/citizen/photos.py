"""Checks an uploaded photo by its content (Pillow), never by its name or declared type,
and reads the EXIF GPS position when the camera recorded one."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from cloud.citizen.errors import PhotoError

MAX_PHOTO_BYTES = 5 * 1024 * 1024
ALLOWED = {"JPEG": "image/jpeg", "PNG": "image/png"}
_GPS_IFD = 0x8825
# refuse decompression bombs well before Pillow's own (warning-only) limit
_MAX_PIXELS = 50_000_000


@dataclass(frozen=True, slots=True)
class Photo:
    data: bytes
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
    except PhotoError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise PhotoError(
            "写真として読み取れないファイルです。JPEG または PNG の画像を選んでください。"
        ) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise PhotoError("写真のファイルが壊れているため読み取れません。") from e
    return Photo(
        data=data,
        mime=ALLOWED[fmt],
        width=width,
        height=height,
        sha256=hashlib.sha256(data).hexdigest(),
        gps=gps,
    )
