"""The AKCU call-unit line protocol, unit side (contract A).

One :class:`AkcuLine` is a radio concentrator: many units share it, each with its own
``unit_id`` and ``msg_seq``. Units send heartbeats (never retried) and BTN/CAN events,
which they repeat every simulated second, with the same ``msg_seq``, until the host
answers ``$AKAK,<unit_id>,<msg_seq>*HH`` or 30 repeats have gone unanswered.

The downlink: a unit acknowledges a host notice
``$AKNT,<unit_id>,<notice_seq>,<HEAT|DISASTER>,<level>,<notice_id>,<text>*HH`` on receipt
with ``$AKNA,<unit_id>,<notice_seq>*HH``, shows a repeated ``notice_seq`` only once, and,
with ``seen_after_s``, its resident (of the units in ``pressing``, default all) presses
"seen" that long (simulated) after it first arrived: ``SEEN,<notice_id>``, retried like
``BTN`` until acknowledged.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from firmware_sim.models.callunit import CallUnitModel
from firmware_sim.servers.endpoints import Endpoint
from firmware_sim.servers.nmea import checksum, sentence

log = logging.getLogger(__name__)
RETRY_S = 1.0
MAX_RETRIES = 30


@dataclass
class Pending:
    line: bytes
    first_sent: float  # simulated time
    resent: int = 0


@dataclass(frozen=True)
class Notice:
    unit_id: int
    seq: int
    kind: str  # HEAT or DISASTER
    level: int
    notice_id: str
    text: str


@dataclass
class _UnitNotices:
    seen: deque[int] = field(default_factory=lambda: deque(maxlen=64))
    to_press: list[str] = field(default_factory=list)  # notice ids, pressed at the next tick
    presses: list[tuple[float, str]] = field(default_factory=list)  # (sim time, notice id)


def _checksum(body: bytes) -> str:
    x = 0
    for b in body:
        x ^= b
    return f"{x:02X}"


def _sentence(body: str) -> bytes:
    data = body.encode()
    return b"$" + data + f"*{_checksum(data)}\r\n".encode()


def parse_notice(raw: bytes) -> Notice | None:
    """A valid ``$AKNT`` line (UTF-8 text), else None."""
    raw = raw.strip()
    if not raw.startswith(b"$AKNT,") or raw[-3:-2] != b"*":
        return None
    body, hh = raw[1:-3], raw[-2:].decode("ascii", "replace")
    if _checksum(body) != hh.upper():
        return None
    try:
        parts = body.decode("utf-8").split(",")
        if len(parts) != 7:
            return None
        return Notice(int(parts[1]), int(parts[2]), parts[3], int(parts[4]), parts[5], parts[6])
    except (UnicodeDecodeError, ValueError):
        return None


def format_message(unit_id: int, seq: int, type_: str, values: dict[str, float]) -> bytes:
    fields = [str(unit_id), str(seq), type_]
    if type_ == "SEEN":
        fields.append(str(values["notice_id"]))
    if type_ in ("HB", "BTN"):
        fields += [f"{values['temperature']:.1f}", f"{values['humidity']:.1f}"]
    if type_ == "HB":
        fields.append(str(int(values["battery"])))
    return sentence("AKCU," + ",".join(fields)).encode("ascii")


def parse_ack(line: str) -> tuple[int, int] | None:
    """``(unit_id, msg_seq)`` of a valid ``$AKAK`` line, else None."""
    line = line.strip()
    if not line.startswith("$AKAK,") or "*" not in line:
        return None
    body, _, hh = line[1:].partition("*")
    if checksum(body) != hh.upper():
        return None
    parts = body.split(",")
    if len(parts) != 3:
        return None
    try:
        return int(parts[1]), int(parts[2])
    except ValueError:
        return None


class AkcuLine:
    """Many call units on one line (pty or TCP)."""

    def __init__(
        self,
        name: str,
        endpoint: Endpoint,
        units: dict[int, CallUnitModel],
        *,
        seen_after_s: float | None = None,
        pressing: set[int] | None = None,
    ) -> None:
        self.name = name
        self.seen_after_s = seen_after_s
        # the units whose residents press "seen" (None: every unit's, with seen_after_s)
        self.pressing = pressing
        self.notices: list[Notice] = []  # every notice shown (once per notice_seq)
        self.on_notice: Callable[[Notice], None] | None = None  # benchmarks time arrivals
        self._notice_state: dict[int, _UnitNotices] = {}
        self.endpoint = endpoint
        endpoint.on_data = self._received
        self.units = units
        # start sequences away from 0 so a restarted simulator is not taken for duplicates
        base = int(time.time()) % 65536
        self.seq = {u: (base + 97 * u) % 65536 for u in units}
        self.pending: dict[tuple[int, int], Pending] = {}
        self.acks = 0
        self.sent = 0
        self.given_up = 0
        self._rx = b""
        self._last: float | None = None

    def _next_seq(self, unit: int) -> int:
        s = self.seq[unit]
        self.seq[unit] = (s + 1) % 65536
        return s

    def _received(self, data: bytes) -> None:
        self._rx += data
        while b"\n" in self._rx:
            raw, _, self._rx = self._rx.partition(b"\n")
            if raw.startswith(b"$AKNT"):
                self._notice(raw)
                continue
            ack = parse_ack(raw.decode("ascii", "replace"))
            if ack is not None and self.pending.pop(ack, None) is not None:
                self.acks += 1
        if len(self._rx) > 4096:
            self._rx = b""

    def _notice(self, raw: bytes) -> None:
        n = parse_notice(raw)
        if n is None or n.unit_id not in self.units:
            return  # a unit ignores frames that are garbled or meant for another unit
        self.endpoint.write(_sentence(f"AKNA,{n.unit_id},{n.seq}"))  # ack on receipt
        state = self._notice_state.setdefault(n.unit_id, _UnitNotices())
        if n.seq in state.seen:
            return  # our ack was lost: shown once already
        state.seen.append(n.seq)
        self.notices.append(n)
        if self.on_notice is not None:
            self.on_notice(n)
        if self.seen_after_s is not None and (self.pressing is None or n.unit_id in self.pressing):
            state.to_press.append(n.notice_id)

    def _seen_presses(self, a: float, now: float) -> list[tuple[float, int, str]]:
        """(time, unit, notice id) of "seen" presses due in ``(a, now]``."""
        due = []
        for unit, state in self._notice_state.items():
            for nid in state.to_press:
                state.presses.append((now + (self.seen_after_s or 0.0), nid))
            state.to_press.clear()
            for t, nid in [p for p in state.presses if p[0] <= now]:
                state.presses.remove((t, nid))
                due.append((max(t, a), unit, nid))
        return due

    def tick(self, now: float) -> None:
        """Emit everything the units originated since the last tick, and due retries."""
        if self._last is None:
            self._last = now
            return
        a, self._last = self._last, now
        if now <= a:
            return
        out = []
        for unit, model in self.units.items():
            for msg in model.messages(a, now):
                if not model.online(msg.t):
                    continue
                seq = self._next_seq(unit)
                line = format_message(unit, seq, msg.type, msg.values)
                out.append((msg.t, line))
                if msg.type != "HB":
                    # retries count from when the line carried it, not from the event time
                    self.pending[(unit, seq)] = Pending(line, now)
        for t, unit, nid in self._seen_presses(a, now):
            seq = self._next_seq(unit)
            line = format_message(unit, seq, "SEEN", {"notice_id": nid})  # type: ignore[dict-item]
            out.append((t, line))
            self.pending[(unit, seq)] = Pending(line, now)
        for key, p in list(self.pending.items()):
            # one repeat per tick at most: at high --speed many simulated seconds pass per tick
            due = min(MAX_RETRIES, int((now - p.first_sent) // RETRY_S))
            if due > p.resent:
                p.resent = due
                out.append((now, p.line))
            if p.resent >= MAX_RETRIES:
                del self.pending[key]
                self.given_up += 1
                log.warning("akcu_unacknowledged line=%s unit=%d seq=%d", self.name, *key)
        out.sort(key=lambda x: x[0])
        for _, line in out:
            self.endpoint.write(line)
            self.sent += 1
