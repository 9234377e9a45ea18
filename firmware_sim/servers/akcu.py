"""The AKCU call-unit line protocol, unit side (contract A).

One :class:`AkcuLine` is a radio concentrator: many units share it, each with its own
``unit_id`` and ``msg_seq``. Units send heartbeats (never retried) and BTN/CAN events,
which they repeat every simulated second, with the same ``msg_seq``, until the host
answers ``$AKAK,<unit_id>,<msg_seq>*HH`` or 30 repeats have gone unanswered.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

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


def format_message(unit_id: int, seq: int, type_: str, values: dict[str, float]) -> bytes:
    fields = [str(unit_id), str(seq), type_]
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

    def __init__(self, name: str, endpoint: Endpoint, units: dict[int, CallUnitModel]) -> None:
        self.name = name
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
            ack = parse_ack(raw.decode("ascii", "replace"))
            if ack is not None and self.pending.pop(ack, None) is not None:
                self.acks += 1
        if len(self._rx) > 4096:
            self._rx = b""

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
