"""Keeps secrets out of request logs: a :class:`logging.Filter` that rewrites the
request target of uvicorn's access log (and of httpx's request log) before any
handler formats it.

- query parameters named like a secret (``token``, ``access_token``, ``key``,
  ``signature``, ...) keep their name, their value becomes ``REDACTED``;
- the segment after a capability-link prefix (:data:`TOKEN_PATH_PREFIXES`: a
  subscriber's manage/unsubscribe links, a report's status page) and any path segment
  that looks like a token (32 or more URL-safe characters) become ``REDACTED``.

Headers are never logged: uvicorn's access log has none, and no code of ours logs a
request's headers, so ``Authorization`` cannot appear.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

REDACTED = "REDACTED"
SECRET_PARAM_WORDS = (
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "signature",
    "sig",
    "auth",
    "session",
    "credential",
    "code",
)
# a capability link's secret is the segment after one of these
TOKEN_PATH_PREFIXES: tuple[str, ...] = (
    "/citizen/subscriptions/",
    "/citizen/reports/status/",
    "/citizen/reports/s/",
    "/citizen/flood/images/",
)
# token_urlsafe(24) and up, hex digests, signed links; shorter ids (alerts, devices,
# report references) stay readable for operators
_TOKEN_SEGMENT = re.compile(r"^[A-Za-z0-9_.~=%-]{32,}$")
LOGGERS = ("uvicorn.access", "httpx")


def _secret_param(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_PARAM_WORDS)


def redact_path(path: str) -> str:
    for prefix in TOKEN_PATH_PREFIXES:
        if path.startswith(prefix) and len(path) > len(prefix):
            rest = path[len(prefix) :]
            _, sep, tail = rest.partition("/")
            path = prefix + REDACTED + sep + tail
            break
    segments = path.split("/")
    return "/".join(REDACTED if _TOKEN_SEGMENT.match(s) else s for s in segments)


def redact_query(query: str) -> str:
    """Secret-named parameters' values redacted; every other byte kept as sent."""
    out = []
    for item in query.split("&"):
        name, sep, _value = item.partition("=")
        if _secret_param(unquote_plus(name)):
            out.append(f"{name}={REDACTED}")
        elif not sep and _TOKEN_SEGMENT.match(item):
            out.append(REDACTED)  # a bare token as the whole query
        else:
            out.append(item)
    return "&".join(out)


def redact_target(target: str) -> str:
    """A request target (``/path?query``) or an absolute URL without its secrets."""
    parts = urlsplit(target)
    return urlunsplit(
        (parts.scheme, parts.netloc, redact_path(parts.path), redact_query(parts.query), "")
    )


def _looks_like_target(value: object) -> bool:
    text = str(value)
    return text.startswith("/") or text.startswith(("http://", "https://"))


class RedactTokens(logging.Filter):
    """Rewrites request targets among a record's arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args:
            record.args = tuple(redact_target(str(a)) if _looks_like_target(a) else a for a in args)
        elif not args and isinstance(record.msg, str) and _looks_like_target(record.msg):
            record.msg = redact_target(record.msg)
        return True


def install(names: tuple[str, ...] = LOGGERS) -> None:
    """Attach one :class:`RedactTokens` to each logger (idempotent)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
