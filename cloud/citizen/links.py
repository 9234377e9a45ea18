"""The one base of every link sent to residents (e-mail, SMS, report status).

It is ``api.public_url`` from the settings, never the request's ``Host`` header, which
the client chooses. Production refuses to start without it (``CloudSettings``); a
development instance falls back to its own loopback address and says so once.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

_warned: set[str] = set()


def public_base(settings: Any) -> str:
    """``https://host[/prefix]`` without a trailing slash."""
    api = getattr(settings, "api", None)
    url = getattr(api, "public_url", None)
    if isinstance(url, str) and url:
        return url.rstrip("/")
    port = getattr(api, "port", 8000) or 8000
    fallback = f"http://127.0.0.1:{port}"
    if fallback not in _warned:
        _warned.add(fallback)
        log.warning(
            "public_url_fallback base=%s reason=api.public_url_not_set environment=%s",
            fallback,
            getattr(settings, "environment", "unknown"),
        )
    return fallback
