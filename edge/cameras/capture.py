"""One picture from an IP camera over HTTP (httpx), with the reason when it is bad.

A snapshot (``url``) is one JPEG body; an MJPEG stream (``mjpeg_url``,
``multipart/x-mixed-replace``) gives its first complete JPEG part, and the stream is
closed right after. A body or part is read as a stream and abandoned past ``max_bytes``,
so a camera sending 50 MB costs the gateway at most ``max_bytes`` of memory; a stream
is abandoned after ``timeout_s`` in all (a camera trickling bytes never holds the task).
"""

from __future__ import annotations

import asyncio
import io
import re

import httpx
from PIL import Image

from edge.cameras.config import Auth, Camera, Mode

_BOUNDARY = re.compile(r"""boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))""", re.IGNORECASE)
_HEADERS_MAX = 8192  # a part's header block


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


async def capture(client: httpx.AsyncClient, cam: Camera) -> bytes:
    """The picture by the camera's mode (snapshot or MJPEG), checked to decode."""
    if cam.capture_mode is Mode.MJPEG:
        return await mjpeg_frame(client, cam)
    return await snapshot(client, cam)


async def snapshot(client: httpx.AsyncClient, cam: Camera) -> bytes:
    """The camera's JPEG bytes, checked to decode; raises CaptureError with the reason."""
    if cam.url is None:
        raise CaptureError("no snapshot url configured")
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


async def mjpeg_frame(client: httpx.AsyncClient, cam: Camera) -> bytes:
    """The first complete JPEG part of the camera's MJPEG stream, checked to decode.

    The boundary comes from the response's Content-Type; a part's end is its
    Content-Length when it gives one, else the next boundary line.
    """
    if cam.mjpeg_url is None:
        raise CaptureError("no mjpeg_url configured")
    try:
        async with asyncio.timeout(cam.timeout_s):
            async with client.stream(
                "GET", cam.mjpeg_url, auth=_auth(cam), timeout=cam.timeout_s
            ) as r:
                if r.status_code != 200:
                    raise CaptureError(f"HTTP {r.status_code}")
                raw_ctype = r.headers.get("content-type", "")
                ctype = raw_ctype.split(";")[0].strip().lower()
                if ctype not in ("multipart/x-mixed-replace", "multipart/mixed"):
                    raise CaptureError(f"not an MJPEG stream: content-type {ctype or 'missing'!r}")
                m = _BOUNDARY.search(raw_ctype)
                if m is None:
                    raise CaptureError(f"MJPEG stream without a boundary in {raw_ctype!r}")
                boundary = (m.group(1) or m.group(2)).removeprefix("--").encode()
                body = await _first_part(r, boundary, cam.max_bytes)
    except TimeoutError:
        raise CaptureError(f"timeout after {cam.timeout_s} s (no complete MJPEG part)") from None
    except httpx.TimeoutException:
        raise CaptureError(f"timeout after {cam.timeout_s} s") from None
    except httpx.ConnectError:
        raise CaptureError("connect failed") from None
    except httpx.HTTPError as e:
        raise CaptureError(f"HTTP error: {type(e).__name__}") from None
    check_jpeg(body)
    return body


async def _first_part(r: httpx.Response, boundary: bytes, limit: int) -> bytes:
    """Read the stream until its first part is complete; the caller closes the stream."""
    delim = b"--" + boundary
    buf = bytearray()
    chunks = r.aiter_bytes()
    # the whole part (headers, body, the closing boundary line) may not exceed the cap by
    # more than the header block: nothing past ``limit`` body bytes is kept
    cap = limit + _HEADERS_MAX + len(delim) + 8

    async def more() -> bool:
        async for chunk in chunks:
            buf.extend(chunk)
            if len(buf) > cap:
                raise CaptureError(f"MJPEG part over max_bytes {limit}")
            return True
        return False

    while (start := buf.find(delim)) < 0:
        if len(buf) > _HEADERS_MAX + len(delim):
            raise CaptureError(f"MJPEG stream: no boundary {delim.decode(errors='replace')!r}")
        if not await more():
            raise CaptureError("MJPEG stream ended before its first boundary")
    while (end_h := buf.find(b"\r\n\r\n", start)) < 0:
        if len(buf) - start > _HEADERS_MAX:
            raise CaptureError("MJPEG part headers too long")
        if not await more():
            raise CaptureError("MJPEG stream ended inside a part's headers")
    headers = _part_headers(bytes(buf[start + len(delim) : end_h]))
    ptype = headers.get("content-type", "image/jpeg").split(";")[0].strip().lower()
    if ptype != "image/jpeg":
        raise CaptureError(f"MJPEG part is not a JPEG: content-type {ptype!r}")
    body_at = end_h + 4
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise CaptureError(f"MJPEG part content-length {length!r} is not a number")
        n = int(length)
        if n > limit:
            raise CaptureError(f"MJPEG part of {n} bytes is over max_bytes {limit}")
        while len(buf) - body_at < n:
            if not await more():
                got = len(buf) - body_at
                raise CaptureError(f"truncated MJPEG part: stream ended after {got} of {n} bytes")
        return bytes(buf[body_at : body_at + n])
    while (end := buf.find(b"\r\n" + delim, body_at)) < 0:
        if len(buf) - body_at > limit:
            raise CaptureError(f"MJPEG part over max_bytes {limit}")
        if not await more():
            got = len(buf) - body_at
            raise CaptureError(f"truncated MJPEG part: stream ended after {got} bytes")
    return bytes(buf[body_at:end])


def _part_headers(block: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.decode("latin-1").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            out[name.strip().lower()] = value.strip()
    return out


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
