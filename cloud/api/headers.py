"""Security headers on every response of the app (an ASGI middleware).

One Content-Security-Policy for everything the app serves itself: scripts only as
files from this origin (no inline script), styles only from this origin or the inline
``<style>`` blocks of the shipped citizen templates, allowed by their SHA-256 computed
from the templates at start-up, so an injected block never applies. The API
documentation pages load Swagger UI / ReDoc from their CDN and set a policy of their
own (:func:`docs_csp`). HSTS is only sent on requests that arrived over TLS, or through
a proxy listed in ``api.trusted_proxies`` that says so in ``X-Forwarded-Proto``: on
plain HTTP browsers ignore it, and a development instance must stay reachable over
http://.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TEMPLATE_DIRS: tuple[Path, ...] = (Path(__file__).resolve().parents[1] / "citizen" / "templates",)
HSTS = "max-age=31536000; includeSubDomains"
_INLINE = re.compile(r"<(style|script)(?:\s[^>]*)?>(.*?)</\1>", re.S | re.I)
_JINJA = ("{{", "{%", "{#")


def inline_hashes(html: str) -> list[str]:
    """CSP source expressions (``'sha256-...'``) of the inline style/script blocks."""
    out = []
    for _tag, body in _INLINE.findall(html):
        if body.strip():
            digest = hashlib.sha256(body.encode("utf-8")).digest()
            out.append(f"'sha256-{base64.b64encode(digest).decode()}'")
    return out


def template_style_hashes(dirs: Iterable[Path] = TEMPLATE_DIRS) -> list[str]:
    """Hashes of the static inline blocks in the templates of ``dirs``. A block with
    template syntax inside would hash differently once rendered: it is left out (and
    the citizen CSP test fails), so move such styles to a fixed block."""
    hashes: set[str] = set()
    for d in dirs:
        for path in sorted(d.glob("*.html")) if d.is_dir() else ():
            for _tag, body in _INLINE.findall(path.read_text(encoding="utf-8")):
                if not any(mark in body for mark in _JINJA):
                    hashes.update(inline_hashes(f"<style>{body}</style>"))
    return sorted(hashes)


def app_csp(style_hashes: Sequence[str]) -> str:
    styles = " ".join(["'self'", *style_hashes])
    return (
        "default-src 'none'; script-src 'self'; "
        f"style-src {styles}; img-src 'self' data:; font-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def docs_csp(script_hashes: Sequence[str]) -> str:
    # Swagger UI and ReDoc come from jsDelivr; their own inline bootstrap script is
    # allowed by hash. They build styles at run time, hence 'unsafe-inline' for styles
    # on these staff pages only (no script can be injected through a style).
    scripts = " ".join(["https://cdn.jsdelivr.net", *script_hashes])
    return (
        f"default-src 'none'; script-src {scripts}; "
        "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
        "img-src 'self' data: https://cdn.jsdelivr.net https://fastapi.tiangolo.com "
        "https://cdn.redoc.ly; font-src https://fonts.gstatic.com; connect-src 'self'; "
        "worker-src blob:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    )


class SecurityHeaders:
    """Adds the headers to every HTTP response; a route may set its own CSP first
    (the documentation pages do)."""

    def __init__(self, app: ASGIApp, *, csp: str, trusted_proxies: Sequence[str] = ()) -> None:
        self.app = app
        self.csp = csp
        self.trusted_proxies = frozenset(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = self._over_tls(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", self.csp)
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                if tls:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _over_tls(self, scope: Scope) -> bool:
        if scope.get("scheme") == "https":
            return True
        client = scope.get("client")
        if client is None or client[0] not in self.trusted_proxies:
            return False
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-proto":
                # the proxy closest to us appended last
                return value.decode("latin-1").split(",")[-1].strip().lower() == "https"
        return False
