"""The AKCU line protocol (contract A): parse unit messages, build host ACKs.

Unit -> host ``$AKCU,<unit_id>,<msg_seq>,<type>[,<fields>...]*HH``; host -> unit
``$AKAK,<unit_id>,<msg_seq>*HH``. The downlink: host -> unit notices
``$AKNT,<unit_id>,<notice_seq>,<HEAT|DISASTER>,<level>,<notice_id>,<text>*HH`` (text in
UTF-8), acknowledged on receipt by ``$AKNA,<unit_id>,<notice_seq>*HH``; the resident's
"seen" press comes back as ``SEEN,<notice_id>``. See README.md in this folder.
"""

from __future__ import annotations

import re
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
    type: str  # HB, BTN, CAN or SEEN; NA for a unit's notice acknowledgement
    values: dict[str, Any]

    @property
    def needs_ack(self) -> bool:
        return self.type in ("BTN", "CAN", "SEEN")


NOTICE_KIND = {"heat": "HEAT", "disaster": "DISASTER"}
_NOTICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,35}$")


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
    """Fields of a checksum-verified sentence (``AKCU``, unit, seq, type, ...; or ``AKNA``)."""
    if fields[0] == "AKNA":
        if len(fields) != 3:
            raise FrameError(f"AKNA needs unit_id and notice_seq, got {len(fields) - 1} fields")
        unit = _int(fields[1], "unit_id", 1, 65535)
        return Message(unit, _int(fields[2], "notice_seq", 0, 65535), "NA", {})
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
    elif kind == "SEEN":
        if len(rest) != 1 or not _NOTICE_ID.match(rest[0]):
            raise FrameError(f"SEEN needs one notice_id, got {','.join(rest)[:40]!r}")
        values = {"event": "notice_seen", "notice_id": rest[0]}
    else:
        raise FrameError(f"unknown message type {kind[:8]!r}")
    return Message(unit, seq, kind, values)


def sentence(body: str) -> bytes:
    """``$<body>*HH\\r\\n`` (the checksum covers the body's UTF-8 bytes)."""
    return f"${body}*{nmea_checksum(body.encode())}\r\n".encode()


def ack(unit_id: int, seq: int) -> bytes:
    return sentence(f"AKAK,{unit_id},{seq}")


def notice(unit_id: int, notice_seq: int, params: dict[str, Any]) -> bytes:
    """The ``$AKNT`` frame of a checked notice (edge.actions.check_notice)."""
    kind = NOTICE_KIND[params["kind"]]
    return sentence(
        f"AKNT,{unit_id},{notice_seq},{kind},{params['level']},{params['notice_id']},"
        f"{params['text']}"
    )


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
