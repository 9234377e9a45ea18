"""The call-unit :class:`~edge.drivers.base.StreamDriver`, one per unit, sharing lines.

Several units share one line (a radio concentrator). The first driver on a line
opens it; a reader task demultiplexes messages by unit id into per-unit queues.
A BTN or CAN is acknowledged only after the agent has taken the reading (the
generator resumes after ``yield`` once the reading is committed to the spool), so
an ACK means "durably received". A re-sent message already acknowledged is
acknowledged again; one not yet acknowledged is dropped as a duplicate.

Notices go out through the line's :class:`~edge.drivers.callunit.downlink.Downlink`
(paced, by priority); the reader hands it the units' ``$AKNA`` acknowledgements.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import serial

from edge.config import Device
from edge.drivers.base import StreamDriver
from edge.drivers.callunit.downlink import Downlink
from edge.drivers.callunit.protocol import Dedup, FrameError, Message, ack, parse
from edge.drivers.lines import LineChannel, line_key, open_line, sentence_fields
from edge.errors import DeviceError

log = logging.getLogger(__name__)


class _SharedLine:
    """One open line and the units listening on it."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.channel: LineChannel | None = None
        self.units: dict[int, asyncio.Queue[Message | None]] = {}
        self.dedup = Dedup()
        self.acked: dict[int, set[int]] = {}
        self.garbage = 0
        self.last_error: str | None = None
        self.unknown_logged: set[int] = set()
        self.task: asyncio.Task[None] | None = None
        self.downlink: Downlink | None = None

    async def run(self) -> None:
        ch = self.channel
        assert ch is not None
        while (raw := await ch.readline()) is not None:
            fields = sentence_fields(ch, raw, self._refuse)
            if fields is None:
                continue
            try:
                msg = parse(fields)
            except FrameError as exc:
                self._refuse(f"bad frame: {exc}", raw)
                continue
            if msg.type == "NA":
                if self.downlink is not None:
                    self.downlink.acked(msg.unit_id, msg.seq)
                continue
            queue = self.units.get(msg.unit_id)
            if queue is None:
                if msg.unit_id not in self.unknown_logged:
                    self.unknown_logged.add(msg.unit_id)
                    log.error("callunit_unknown line=%s unit_id=%d", self.key, msg.unit_id)
                continue
            if not self.dedup.first_time(msg.unit_id, msg.seq):
                if msg.needs_ack and msg.seq in self.acked.get(msg.unit_id, set()):
                    self.send_ack(msg.unit_id, msg.seq)  # our ACK was lost: say it again
                continue
            queue.put_nowait(msg)
        for q in self.units.values():
            q.put_nowait(None)

    def _refuse(self, why: str, raw: bytes) -> None:
        self.garbage += 1
        self.last_error = why
        log.debug("callunit_refused line=%s reason=%s line=%r", self.key, why, raw[:80])

    def send_ack(self, unit_id: int, seq: int) -> None:
        acked = self.acked.setdefault(unit_id, set())
        if len(acked) > 256:
            acked.clear()  # the dedup window is 64; older seqs will never be re-sent
        acked.add(seq)
        if self.channel is not None:
            self.channel.write(ack(unit_id, seq))


_lines: dict[str, _SharedLine] = {}


class CallUnitDriver(StreamDriver):
    """Values of one call unit (``device.unit_id``) from a possibly shared line."""

    def __init__(self, device: Device) -> None:
        self._error: str | None = None
        self._line: _SharedLine | None = None
        self._stats_line: _SharedLine | None = None  # kept after close, for the counters
        super().__init__(device)
        self.line_key = line_key(device)
        self._queue: asyncio.Queue[Message | None] | None = None

    @property  # type: ignore[override]
    def garbage(self) -> int:
        return self._stats_line.garbage if self._stats_line is not None else 0

    @garbage.setter
    def garbage(self, value: int) -> None:
        pass  # counted per line

    @property  # type: ignore[override]
    def last_error(self) -> str | None:
        if self._error is not None:
            return self._error
        return self._stats_line.last_error if self._stats_line is not None else None

    @last_error.setter
    def last_error(self, value: str | None) -> None:
        self._error = value

    async def open(self) -> None:
        if self._line is not None:
            return
        shared = _lines.get(self.line_key)
        if shared is None:
            shared = _SharedLine(self.line_key)
            try:
                channel = await open_line(self.device)
            except (OSError, serial.SerialException, TimeoutError) as exc:
                raise DeviceError(self.device.id, f"cannot open line: {exc}") from exc
            shared.channel = channel
            if self.line_key in _lines:  # another unit opened it meanwhile
                channel.close()
                shared = _lines[self.line_key]
            else:
                _lines[self.line_key] = shared
                shared.task = asyncio.create_task(shared.run())
                shared.downlink = Downlink(channel, self.device.baudrate)
        self._queue = asyncio.Queue()
        shared.units[self.device.unit_id] = self._queue
        self._line = self._stats_line = shared

    async def close(self) -> None:
        shared, self._line = self._line, None
        if shared is None:
            return
        shared.units.pop(self.device.unit_id, None)
        if not shared.units:
            _lines.pop(shared.key, None)
            if shared.task is not None:
                shared.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await shared.task
            if shared.downlink is not None:
                shared.downlink.close()
            if shared.channel is not None:
                shared.channel.close()

    async def notice(
        self,
        params: dict[str, Any],
        *,
        rank: int,
        begin: Callable[[], bool],
        expired: Callable[[], bool],
    ) -> int:
        """Deliver a checked notice to this unit; the number of sends it took.

        Raises DeviceError when the line cannot be opened, and the downlink's NotStarted
        or NoticeFailed.
        """
        if self._line is None:
            await self.open()
        assert self._line is not None and self._line.downlink is not None
        return await self._line.downlink.send(
            self.device.unit_id, params, rank=rank, begin=begin, expired=expired
        )

    async def stream(self) -> AsyncIterator[dict[str, Any]]:
        if self._line is None:
            await self.open()
        assert self._line is not None and self._queue is not None
        while True:
            msg = await self._queue.get()
            if msg is None:
                channel = self._line.channel if self._line else None
                reason = channel.closed_reason if channel else None
                raise DeviceError(self.device.id, reason or "line closed")
            self._error = None
            yield dict(msg.values)
            if msg.needs_ack and self._line is not None:
                self._line.send_ack(msg.unit_id, msg.seq)
