"""Request bodies of the public pages, read with a hard byte limit before any parsing.

Starlette parses a form as it streams and spools uploaded files to temporary files; a
``Content-Length`` check alone misses chunked requests, which have none. Every citizen route
therefore reads its body through :func:`read_limited` first: the count stops the read at the
limit, whatever the framing, and the form is then parsed from memory (files included), so
nothing of a refused or accepted body is ever written to disk.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import FormData
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import parse_options_header

try:
    from python_multipart.exceptions import FormParserError
except ModuleNotFoundError:  # pragma: no cover - older python-multipart
    from multipart.exceptions import FormParserError  # type: ignore[no-redef]

log = logging.getLogger(__name__)

MAX_FIELDS = 50


class BodyTooLarge(Exception):
    """The body passed ``limit`` bytes (``read`` = bytes received when the read stopped)."""

    def __init__(self, limit: int, read: int) -> None:
        super().__init__(f"request body over {limit} bytes")
        self.limit = limit
        self.read = read


class BadForm(Exception):
    """The body is not a well-formed form (broken multipart framing, too many fields)."""


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, or :class:`BodyTooLarge` as soon as more than ``limit`` bytes came."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit, 0)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit, size)
        chunks.append(chunk)
    return b"".join(chunks)


class _MemoryMultiPartParser(MultiPartParser):
    # the body is already in memory and bounded: keep uploaded files there too
    spool_max_size = 1 << 30


async def _once(body: bytes) -> AsyncGenerator[bytes, None]:
    yield body


async def parse_form(request: Request, body: bytes) -> FormData:
    """The form in ``body`` (urlencoded or multipart); :class:`BadForm` when malformed."""
    content_type, _ = parse_options_header(request.headers.get("content-type"))
    try:
        if content_type == b"multipart/form-data":
            parser = _MemoryMultiPartParser(
                request.headers, _once(body), max_files=1, max_fields=MAX_FIELDS
            )
            return await parser.parse()
        if content_type == b"application/x-www-form-urlencoded":
            return await FormParser(request.headers, _once(body), max_fields=MAX_FIELDS).parse()
    except MultiPartException as exc:
        raise BadForm(exc.message) from exc
    except FormParserError as exc:
        raise BadForm(str(exc)) from exc
    except (UnicodeDecodeError, LookupError, ValueError) as exc:
        raise BadForm(f"{type(exc).__name__}: {exc}") from exc
    return FormData()


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class LimitedBodyRoute(APIRoute):
    """A route whose body is read within :meth:`body_limit` and parsed before the endpoint
    runs; ``await request.form()`` in the endpoint then returns that parsed form."""

    def body_limit(self, request: Request) -> int:
        return 64 * 1024

    def refused(self, request: Request, status: int, reason: str) -> Response:
        return Response(reason, status_code=status, media_type="text/plain; charset=utf-8")

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            limit = self.body_limit(request)
            try:
                body = await read_limited(request, limit)
                if body:
                    # Starlette keeps a parsed form here; request.form() returns it as is
                    request._form = await parse_form(request, body)
                request._body = body
            except BodyTooLarge as exc:
                log.warning(
                    "citizen_body_refused route=%s limit=%s read=%s", self.name, limit, exc.read
                )
                return self.refused(request, 413, f"request body over {limit} bytes")
            except BadForm as exc:
                log.info("citizen_form_malformed route=%s reason=%s", self.name, exc)
                return self.refused(request, 400, f"malformed form: {exc}")
            return await handler(request)

        return limited
