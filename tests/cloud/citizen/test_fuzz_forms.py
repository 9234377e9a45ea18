"""Hypothesis against the public forms over real HTTP (uvicorn on loopback): random field
sizes, encodings (UTF-8, Shift_JIS, invalid UTF-8, raw bytes), chunked and plain bodies,
random and broken multipart. No answer is ever a 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PATHS = (
    "/citizen/subscribe",
    "/citizen/reports",
    "/citizen/subscriptions/not-a-token",
    "/citizen/subscriptions/not-a-token/confirm",
    "/citizen/subscriptions/u1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/unsubscribe",
)
FIELDS = (
    "channel",
    "address",
    "kinds",
    "area",
    "lat",
    "lon",
    "radius_m",
    "consent",
    "category",
    "description",
    "email",
    "use_photo_location",
    "photo",
)
JAPANESE = st.text(alphabet="秋田市土崎港山王冠水道路穴あいうアイウ０１２．－", max_size=200)


def _encoded(text: str, codec: str) -> bytes:
    return text.encode(codec, errors="replace")


values = st.one_of(
    st.sampled_from(
        [b"email", b"sms", b"yes", b"flood", b"road:pothole", b"39.72", b"140.10", b"1e400"]
    ),
    st.builds(_encoded, JAPANESE, st.sampled_from(["utf-8", "shift_jis", "euc_jp"])),
    st.binary(max_size=300),  # invalid UTF-8 among them
    st.integers(0, 120_000).map(lambda n: b"x" * n),  # around the 64 KiB form limit
    st.just(b"\xff\xd8\xff\xe0" + b"\x00" * 64),  # a JPEG header and nothing else
)
fields = st.lists(st.tuples(st.sampled_from(FIELDS), values), max_size=8)


def _urlencoded(items: list[tuple[str, bytes]]) -> bytes:
    from urllib.parse import quote_from_bytes

    return b"&".join(n.encode() + b"=" + quote_from_bytes(v).encode() for n, v in items)


def _multipart(items: list[tuple[str, bytes]], boundary: bytes, cut: int | None) -> bytes:
    out = b""
    for name, value in items:
        extra = b'; filename="p.jpg"' if name == "photo" else b""
        out += b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + name.encode()
        out += b'"' + extra + b"\r\n\r\n" + value + b"\r\n"
    out += b"--" + boundary + b"--\r\n"
    return out if cut is None else out[:cut]  # a cut body is broken framing


def _chunks(body: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict[str, str], bytes, int | None]:
    path = draw(st.sampled_from(PATHS))
    items = draw(fields)
    kind = draw(st.sampled_from(["urlencoded", "multipart", "raw"]))
    if kind == "urlencoded":
        ctype = "application/x-www-form-urlencoded"
        if draw(st.booleans()):
            ctype += "; charset=" + draw(st.sampled_from(["shift_jis", "utf-8", "bogus"]))
        body = _urlencoded(items)
    elif kind == "multipart":
        boundary = draw(st.sampled_from([b"b0undary", b"----x", b"a" * 70]))
        ctype = "multipart/form-data; boundary=" + boundary.decode()
        if draw(st.booleans()):
            ctype += "; charset=" + draw(st.sampled_from(["shift_jis", "nope"]))
        cut = draw(st.none() | st.integers(0, 400))
        body = _multipart(items, boundary, cut)
    else:
        ctype = draw(st.sampled_from(["multipart/form-data", "text/plain", "", "image/jpeg"]))
        body = draw(st.binary(max_size=2000))
    chunk = draw(st.none() | st.integers(1, 70_000))  # None: one body with Content-Length
    return path, {"Content-Type": ctype} if ctype else {}, body, chunk


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(req=requests())
def test_public_forms_never_answer_5xx(live, req) -> None:  # type: ignore[no-untyped-def]
    path, headers, body, chunk = req
    content = body if chunk is None else _chunks(body, chunk)
    with httpx.Client(base_url=live.url, timeout=30) as client:
        r = client.post(path, content=content, headers=headers)
    assert r.status_code < 500, (path, headers, r.status_code, r.text[:300])
