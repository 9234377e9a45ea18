"""Register decoding and encoding: data types, byte/word orders, scale and offset.

A value spanning several 16-bit registers is rebuilt into big-endian bytes
``A B C D ...`` (A most significant) according to its :class:`ByteOrder`:

- ``ABCD``: registers high word first, bytes big-endian (the Modbus default).
- ``CDAB``: low word first (TUF-2000M flow meters and many other meters).
- ``BADC``: high word first, the two bytes of every register swapped.
- ``DCBA``: fully little-endian.

Decoded value = raw * scale + offset. Encoding is the exact inverse; the simulators
and the tests use it to fill server registers.

Types inside one register (they ignore ``order``; several may share a register):

- ``uint8``: the ``high`` or ``low`` byte (TUF-2000M signal quality, register 92 low byte).
- ``bits``: ``(register & mask) >> shift``, an unsigned integer (a mode or a counter).
- ``bitfield``: each named bit becomes a boolean field (alarm bits -> ``fault_*``).
"""

from __future__ import annotations

import struct
from typing import Any

from edge.config import Byte, DataType, Register

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


def _in_register(reg: Register, word: int) -> int | bool:
    """``uint8`` and ``bits``: the raw unsigned part of one register."""
    if reg.type is DataType.UINT8:
        return (word >> 8) & 0xFF if reg.byte is Byte.HIGH else word & 0xFF
    assert reg.mask is not None
    return (word & reg.mask) >> reg.shift


def _scaled(reg: Register, raw: int) -> int | float:
    return raw if _plain(reg) else float(raw) * reg.scale + reg.offset


def decode_fields(
    reg: Register, words: list[int] | None = None, bit: bool | None = None
) -> dict[str, Any]:
    """Field -> value for one register entry (a bitfield gives one boolean per named bit)."""
    if reg.type is DataType.BITFIELD:
        assert words is not None and reg.bits is not None
        return {name: bool((words[0] >> i) & 1) for name, i in reg.bits.items()}
    return {reg.field: decode(reg, words, bit)}


def decode(reg: Register, words: list[int] | None = None, bit: bool | None = None) -> Any:
    """Decode one value from its registers (or its coil/discrete bit)."""
    t = reg.type
    if t is DataType.BOOL:
        return bool(bit)
    assert words is not None and len(words) == reg.count, "wrong register count"
    if t is DataType.BIT:
        assert reg.bit is not None
        return bool((words[0] >> reg.bit) & 1)
    if t in (DataType.UINT8, DataType.BITS):
        return _scaled(reg, _in_register(reg, words[0]))
    assert t is not DataType.BITFIELD, "a bitfield has several fields: use decode_fields"
    raw = _to_bytes(words, reg.order.value)
    if t is DataType.STRING:
        return raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace").rstrip()
    (value,) = struct.unpack(">" + _STRUCT[t], raw)
    if t in _INTEGER and _plain(reg):
        return int(value)
    return float(value) * reg.scale + reg.offset


def _unscaled(reg: Register, value: Any) -> int:
    return int(value) if _plain(reg) else round((float(value) - reg.offset) / reg.scale)


def encode(reg: Register, value: Any) -> list[int] | bool:
    """The registers (or the bit, for type bool) that make ``decode`` return ``value``.

    Types that share a register give only their own bits; OR them together to fill one
    register. A bitfield takes a mapping field -> bool.
    """
    t = reg.type
    if t is DataType.BOOL:
        return bool(value)
    if t is DataType.BIT:
        assert reg.bit is not None
        return [(1 << reg.bit) if value else 0]
    if t is DataType.UINT8:
        raw = _unscaled(reg, value)
        if not 0 <= raw <= 0xFF:
            raise ValueError(f"{reg.field}: {value!r} does not fit a byte")
        return [raw << 8 if reg.byte is Byte.HIGH else raw]
    if t is DataType.BITS:
        assert reg.mask is not None
        raw = _unscaled(reg, value)
        if raw < 0 or (raw << reg.shift) & ~reg.mask:
            raise ValueError(f"{reg.field}: {value!r} does not fit mask {reg.mask:#x}")
        return [raw << reg.shift]
    if t is DataType.BITFIELD:
        assert reg.bits is not None
        values = dict(value)  # field -> bool
        return [sum(1 << i for name, i in reg.bits.items() if values.get(name))]
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
