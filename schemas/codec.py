"""Encoding and decoding of wire payloads (UTF-8 JSON).

Decoding never raises anything but :class:`~schemas.errors.WireError`, whose
``reason`` names the field and value, so the cloud can dead-letter any payload
without a catch-all.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from schemas.errors import WireError
from schemas.wire import Batch

MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
M = TypeVar("M", bound=BaseModel)


def encode_model(model: BaseModel) -> bytes:
    return model.model_dump_json(exclude_none=True).encode()


def encode_batch(batch: Batch) -> bytes:
    return encode_model(batch)


def describe(exc: ValidationError, limit: int = 5) -> str:
    """One line per error: the dotted field path, the message and the offending value."""
    parts = []
    for err in exc.errors(include_url=False)[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        value = repr(err.get("input"))
        if len(value) > 80:
            value = value[:77] + "..."
        parts.append(f"{loc}: {err['msg']} (got {value})")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"... and {more} more errors")
    return "; ".join(parts)


def decode_model(model: type[M], payload: bytes) -> M:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(f"payload is not UTF-8 (byte {exc.start}: {exc.reason})") from exc
    try:
        # strict on the wire: `true` is not a flow of 1.0, "12" is not a depth of 12
        return model.model_validate_json(text, strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]["loc"] if exc.error_count() else ()
        raise WireError(describe(exc), field=".".join(map(str, first)) or None) from exc


def decode_batch(payload: bytes) -> Batch:
    return decode_model(Batch, payload)
