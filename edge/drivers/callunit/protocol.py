"""The AKCU line protocol (contract A): parse unit messages, build host ACKs.

Unit -> host ``$AKCU,<unit_id>,<msg_seq>,<type>[,<fields>...]*HH``; host -> unit
``$AKAK,<unit_id>,<msg_seq>*HH``. See README.md in this folder.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from edge.drivers.lines import nmea_checksum

DEDUP_WINDOW = 64


class FrameError(ValueError):
    """A checksummed line whose content breaks the protocol; the message says how."""


@dataclass(frozen=True)
class Message:
    unit_id: int
    seq: int
    type: str  # HB, BTN or CAN
    values: dict[str, Any]

    @property
    def needs_ack(self) -> bool:
        return self.type in ("BTN", "CAN")


def _number(text: str, what: str, lo: float, hi: float) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise FrameError(f"{what} {text!r} is not a number") from exc
    if not lo <= value <= hi:
        raise FrameError(f"{what} {value} outside {lo}..{hi}")
    return value


def _int(text: str, what: str, lo: int, hi: int) -> int:
    if not text.isdigit():
        raise FrameError(f"{what} {text!r} is not a decimal integer")
    value = int(text)
    if not lo <= value <= hi:
        raise FrameError(f"{what} {value} outside {lo}..{hi}")
    return value


def parse(fields: list[str]) -> Message:
    """Fields of a checksum-verified sentence (``AKCU``, unit, seq, type, ...)."""
    if fields[0] != "AKCU":
        raise FrameError(f"unknown sentence {fields[0][:8]!r}")
    if len(fields) < 4:
        raise FrameError(f"AKCU needs at least 4 fields, got {len(fields)}")
    unit = _int(fields[1], "unit_id", 1, 65535)
    seq = _int(fields[2], "msg_seq", 0, 65535)
    kind, rest = fields[3], fields[4:]
    values: dict[str, Any]
    if kind == "HB":
        if len(rest) != 3:
            raise FrameError(f"HB needs temp_c, rh_pct, battery_pct, got {len(rest)} fields")
        values = {
            "event": "heartbeat",
            "temperature": _number(rest[0], "temp_c", -40, 70),
            "humidity": _number(rest[1], "rh_pct", 0, 100),
            "battery": float(_int(rest[2], "battery_pct", 0, 100)),
        }
    elif kind == "BTN":
        if len(rest) != 2:
            raise FrameError(f"BTN needs temp_c, rh_pct, got {len(rest)} fields")
        values = {
            "event": "button",
            "temperature": _number(rest[0], "temp_c", -40, 70),
            "humidity": _number(rest[1], "rh_pct", 0, 100),
        }
    elif kind == "CAN":
        if rest:
            raise FrameError(f"CAN takes no fields, got {len(rest)}")
        values = {"event": "cancel"}
    else:
        raise FrameError(f"unknown message type {kind[:8]!r}")
    return Message(unit, seq, kind, values)


def sentence(body: str) -> bytes:
    """``$<body>*HH\\r\\n``."""
    return f"${body}*{nmea_checksum(body.encode())}\r\n".encode()


def ack(unit_id: int, seq: int) -> bytes:
    return sentence(f"AKAK,{unit_id},{seq}")


class Dedup:
    """Remembers the last 64 message seqs of each unit."""

    def __init__(self, window: int = DEDUP_WINDOW) -> None:
        self.window = window
        self._seen: dict[int, deque[int]] = {}

    def first_time(self, unit_id: int, seq: int) -> bool:
        seen = self._seen.setdefault(unit_id, deque(maxlen=self.window))
        if seq in seen:
            return False
        seen.append(seq)
        return True
