"""A simulated IP camera over real HTTP: ``/snapshot.jpg`` and ``/video.mjpg``.

Auth is none, basic or digest (RFC 7616, MD5, qop=auth), as common IP cameras do. The
``fault`` attribute turns the camera into a bad one for tests: ``slow`` (answers after
``slow_s``), ``html`` (a login page with 200), ``truncated`` (JPEG cut in half) or ``huge``
(a 50 MB body). On ``/video.mjpg``: ``truncated`` (the first part cut in half, then the
connection closed) and ``no_boundary`` (a multipart Content-Type without its boundary);
``mjpeg_part_length = False`` leaves out each part's Content-Length. The depth comes
from a callable so a scenario can drive it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from firmware_sim.camera.scene import draw

REALM = "akita-sim-camera"
FAULTS = ("slow", "html", "truncated", "huge", "no_boundary")
HUGE_BYTES = 50 * 1024 * 1024
_DIGEST_FIELD = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]+))')


def _md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


class CameraServer:
    """One camera on 127.0.0.1:<port>; ``start()`` serves in a daemon thread."""

    def __init__(
        self,
        depth_cm: Callable[[], float],
        *,
        auth: str = "none",
        username: str = "admin",
        password: str = "sim-pass",
        port: int = 0,
    ) -> None:
        if auth not in ("none", "basic", "digest"):
            raise ValueError(f"auth {auth!r}: expected none, basic or digest")
        self.depth_cm = depth_cm
        self.auth = auth
        self.username = username
        self.password = password
        self.fault: str | None = None
        self.slow_s = 30.0
        self.mjpeg_part_length = True  # Content-Length in each MJPEG part's headers
        self.mjpeg_opened = 0  # MJPEG streams opened (after auth)
        self.snapshots = 0  # frames served (tests compare with what the gateway took)
        self._nonces: set[str] = set()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/snapshot.jpg"

    @property
    def mjpeg_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    def start(self) -> CameraServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- auth --------------------------------------------------------------------------------

    def challenge(self) -> str:
        if self.auth == "basic":
            return f'Basic realm="{REALM}"'
        nonce = secrets.token_hex(16)
        self._nonces.add(nonce)
        return f'Digest realm="{REALM}", nonce="{nonce}", qop="auth", algorithm=MD5'

    def authorized(self, method: str, header: str | None) -> bool:
        if self.auth == "none":
            return True
        if not header:
            return False
        scheme, _, rest = header.partition(" ")
        if self.auth == "basic" and scheme.lower() == "basic":
            want = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return secrets.compare_digest(rest.strip(), want)
        if self.auth == "digest" and scheme.lower() == "digest":
            return self._digest_ok(method, rest)
        return False

    def _digest_ok(self, method: str, rest: str) -> bool:
        f = {m[0]: m[1] or m[2] for m in _DIGEST_FIELD.findall(rest)}
        if f.get("username") != self.username or f.get("nonce") not in self._nonces:
            return False
        ha1 = _md5(f"{self.username}:{REALM}:{self.password}")
        ha2 = _md5(f"{method}:{f.get('uri', '')}")
        parts = [ha1, f["nonce"], f.get("nc", ""), f.get("cnonce", ""), f.get("qop", ""), ha2]
        return secrets.compare_digest(_md5(":".join(parts)), f.get("response", ""))


def _handler(cam: CameraServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # tests run dozens of cameras; their access logs are noise

        def do_GET(self) -> None:
            if not cam.authorized("GET", self.headers.get("Authorization")):
                self.send_response(401)
                self.send_header("WWW-Authenticate", cam.challenge())
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path.startswith("/snapshot.jpg"):
                self._snapshot()
            elif self.path.startswith("/video.mjpg"):
                self._mjpeg()
            else:
                self.send_error(404)

        def _snapshot(self) -> None:
            fault = cam.fault
            if fault == "slow":
                time.sleep(cam.slow_s)
            if fault == "html":
                self._send(b"<html><body>Login</body></html>", "text/html")
                return
            if fault == "huge":
                self._huge()
                return
            jpeg = draw(cam.depth_cm()).jpeg
            cam.snapshots += 1
            self._send(jpeg[: len(jpeg) // 2] if fault == "truncated" else jpeg, "image/jpeg")

        def _send(self, body: bytes, ctype: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _huge(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(HUGE_BYTES))
            self.end_headers()
            chunk = b"\xff\xd8" + bytes(1024 * 1024 - 2)
            try:
                for _ in range(HUGE_BYTES // len(chunk)):
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up, as it should

        def _mjpeg(self) -> None:
            cam.mjpeg_opened += 1
            fault = cam.fault
            self.close_connection = True  # the stream ends with the connection
            self.send_response(200)
            ctype = "multipart/x-mixed-replace"
            if fault != "no_boundary":
                ctype += "; boundary=frame"
            self.send_header("Content-Type", ctype)
            self.end_headers()
            try:
                for _ in range(1000):
                    jpeg = draw(cam.depth_cm()).jpeg
                    head = "--frame\r\nContent-Type: image/jpeg"
                    if cam.mjpeg_part_length:
                        head += f"\r\nContent-Length: {len(jpeg)}"
                    if fault == "truncated":
                        self.wfile.write(head.encode() + b"\r\n\r\n" + jpeg[: len(jpeg) // 2])
                        return
                    self.wfile.write(head.encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                    cam.snapshots += 1
                    time.sleep(0.2)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler
