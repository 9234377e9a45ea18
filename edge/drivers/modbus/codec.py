"""Register decoding and encoding: data types, byte/word orders, scale and offset.

A value spanning several 16-bit registers is rebuilt into big-endian bytes
``A B C D ...`` (A most significant) according to its :class:`ByteOrder`:

- ``ABCD``: registers high word first, bytes big-endian (the Modbus default).
- ``CDAB``: low word first (TUF-2000M flow meters and many other meters).
- ``BADC``: high word first, the two bytes of every register swapped.
- ``DCBA``: fully little-endian.

Decoded value = raw * scale + offset. Encoding is the exact inverse; the simulators
and the tests use it to fill server registers.
"""

from __future__ import annotations

import struct
from typing import Any

from edge.config import DataType, Register

_STRUCT = {
    DataType.INT16: "h",
    DataType.UINT16: "H",
    DataType.INT32: "i",
    DataType.UINT32: "I",
    DataType.INT64: "q",
    DataType.UINT64: "Q",
    DataType.FLOAT32: "f",
    DataType.FLOAT64: "d",
}
_INTEGER = {
    DataType.INT16,
    DataType.UINT16,
    DataType.INT32,
    DataType.UINT32,
    DataType.INT64,
    DataType.UINT64,
}


def _to_bytes(words: list[int], order: str) -> bytes:
    """Registers as received -> big-endian value bytes."""
    if order in ("CDAB", "DCBA"):
        words = words[::-1]
    raw = b"".join(w.to_bytes(2, "big") for w in words)
    if order in ("BADC", "DCBA"):
        raw = bytes(b for i in range(0, len(raw), 2) for b in (raw[i + 1], raw[i]))
    return raw


def _from_bytes(raw: bytes, order: str) -> list[int]:
    """Big-endian value bytes -> registers as the device holds them."""
    if order in ("BADC", "DCBA"):
        raw = bytes(b for i in range(0, len(raw), 2) for b in (raw[i + 1], raw[i]))
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    if order in ("CDAB", "DCBA"):
        words = words[::-1]
    return words


def _plain(reg: Register) -> bool:
    return reg.scale == 1.0 and reg.offset == 0.0


def decode(reg: Register, words: list[int] | None = None, bit: bool | None = None) -> Any:
    """Decode one value from its registers (or its coil/discrete bit)."""
    t = reg.type
    if t is DataType.BOOL:
        return bool(bit)
    assert words is not None and len(words) == reg.count, "wrong register count"
    if t is DataType.BIT:
        assert reg.bit is not None
        return bool((words[0] >> reg.bit) & 1)
    raw = _to_bytes(words, reg.order.value)
    if t is DataType.STRING:
        return raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace").rstrip()
    (value,) = struct.unpack(">" + _STRUCT[t], raw)
    if t in _INTEGER and _plain(reg):
        return int(value)
    return float(value) * reg.scale + reg.offset


def encode(reg: Register, value: Any) -> list[int] | bool:
    """The registers (or the bit, for type bool) that make ``decode`` return ``value``."""
    t = reg.type
    if t is DataType.BOOL:
        return bool(value)
    if t is DataType.BIT:
        assert reg.bit is not None
        return [(1 << reg.bit) if value else 0]
    if t is DataType.STRING:
        assert reg.length is not None
        data = str(value).encode()[: reg.length * 2].ljust(reg.length * 2, b"\x00")
        return _from_bytes(data, reg.order.value)
    raw_value: float | int = value
    if not _plain(reg):
        raw_value = (float(value) - reg.offset) / reg.scale
    if t in _INTEGER:
        raw_value = round(raw_value) if isinstance(raw_value, float) else int(raw_value)
    return _from_bytes(struct.pack(">" + _STRUCT[t], raw_value), reg.order.value)
