"""One snapshot from an IP camera over HTTP (httpx), with the reason when it is bad.

A body is read as a stream and abandoned past ``max_bytes``, so a camera sending 50 MB
costs the gateway at most ``max_bytes`` of memory.
"""

from __future__ import annotations

import io

import httpx
from PIL import Image

from edge.cameras.config import Auth, Camera


class CaptureError(Exception):
    """A snapshot that could not be used; ``reason`` goes into the camera's status."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _auth(cam: Camera) -> httpx.Auth | None:
    if cam.auth is Auth.NONE or cam.username is None or cam.password is None:
        return None
    secret = cam.password.get_secret_value()
    if cam.auth is Auth.BASIC:
        return httpx.BasicAuth(cam.username, secret)
    return httpx.DigestAuth(cam.username, secret)


async def snapshot(client: httpx.AsyncClient, cam: Camera) -> bytes:
    """The camera's JPEG bytes, checked to decode; raises CaptureError with the reason."""
    try:
        async with client.stream("GET", cam.url, auth=_auth(cam), timeout=cam.timeout_s) as r:
            if r.status_code != 200:
                raise CaptureError(f"HTTP {r.status_code}")
            ctype = r.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "image/jpeg":
                raise CaptureError(f"not a JPEG: content-type {ctype or 'missing'!r}")
            declared = int(r.headers.get("content-length") or 0)
            if declared > cam.max_bytes:
                raise CaptureError(f"body of {declared} bytes is over max_bytes {cam.max_bytes}")
            body = await _read_capped(r, cam.max_bytes)
    except httpx.TimeoutException:
        raise CaptureError(f"timeout after {cam.timeout_s} s") from None
    except httpx.ConnectError:
        raise CaptureError("connect failed") from None
    except httpx.HTTPError as e:
        raise CaptureError(f"HTTP error: {type(e).__name__}") from None
    check_jpeg(body)
    return body


async def _read_capped(r: httpx.Response, limit: int) -> bytes:
    buf = bytearray()
    async for chunk in r.aiter_bytes():
        buf += chunk
        if len(buf) > limit:
            raise CaptureError(f"body over max_bytes {limit}")
    return bytes(buf)


def check_jpeg(body: bytes) -> None:
    """Refuse anything that is not one complete, decodable JPEG."""
    if not body.startswith(b"\xff\xd8"):
        raise CaptureError("not a JPEG: no start-of-image marker")
    if not body.rstrip(b"\x00\r\n").endswith(b"\xff\xd9"):
        raise CaptureError(f"truncated JPEG: no end-of-image marker ({len(body)} bytes)")
    try:
        with Image.open(io.BytesIO(body)) as img:
            # decoded at 1/8 scale: every entropy-coded block is still read (so a corrupt
            # or short stream still fails) without the full frame's pixels in memory
            img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise CaptureError(f"undecodable JPEG: {e}") from None
