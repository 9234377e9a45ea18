"""Notices to call units on one shared line: paced, by priority, retried until acknowledged.

The host writes one notice frame at a time and waits its wire time (10 bits a byte at the
line's baud rate) before the next, so the serial driver never holds a backlog: an
``$AKAK`` for a button press, written directly, goes out after at most the frame on the
wire, never behind hundreds of queued notices. Waiting frames are served by rank (the
command's priority, life_safety first), then in arrival order.

A unit acknowledges a notice on receipt (``$AKNA``). An unacknowledged notice is sent
again every ``RETRY_S`` with the same ``notice_seq``, up to ``MAX_TRIES`` sends and never
after its command's expiry; the unit shows a repeated ``notice_seq`` once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge.drivers.callunit.protocol import notice
from edge.drivers.lines import LineChannel

RETRY_S = 1.0
MAX_TRIES = 30
BITS_PER_BYTE = 10  # 8N1: start + 8 data + stop


class NotStarted(Exception):
    """The notice was called off before its first send (its command had expired)."""


class NoticeFailed(Exception):
    """Sent, but never acknowledged; the message says how often and why it stopped."""


@dataclass
class _Pending:
    unit_id: int
    seq: int
    frame: bytes
    rank: int
    begin: Callable[[], bool]
    expired: Callable[[], bool]
    done: asyncio.Future[int]
    tries: int = 0
    retry: asyncio.TimerHandle | None = field(default=None, repr=False)


class Downlink:
    """The transmit side of one line."""

    def __init__(self, channel: LineChannel, baudrate: int) -> None:
        self.channel = channel
        self.baudrate = baudrate
        self.frames_sent = 0
        self._queue: list[tuple[int, int, _Pending]] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._pending: dict[tuple[int, int], _Pending] = {}
        # a restarted gateway must not reuse recent seqs: the unit would drop them as repeats
        self._seq: dict[int, int] = {}
        self._seq_base = int(time.time()) % 65536
        self._task = asyncio.create_task(self._transmit())

    def _next_seq(self, unit_id: int) -> int:
        s = self._seq.get(unit_id, (self._seq_base + 97 * unit_id) % 65536)
        self._seq[unit_id] = (s + 1) % 65536
        return s

    async def send(
        self,
        unit_id: int,
        params: dict[str, Any],
        *,
        rank: int,
        begin: Callable[[], bool],
        expired: Callable[[], bool],
    ) -> int:
        """Deliver one notice; returns the number of sends it took.

        ``begin()`` runs right before the first send (False: raise NotStarted);
        ``expired()`` stops the retries. Raises NoticeFailed when never acknowledged.
        """
        seq = self._next_seq(unit_id)
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        p = _Pending(unit_id, seq, notice(unit_id, seq, params), rank, begin, expired, done)
        self._pending[(unit_id, seq)] = p
        self._enqueue(p)
        try:
            return await done
        finally:
            self._forget(p)

    def acked(self, unit_id: int, seq: int) -> None:
        p = self._pending.get((unit_id, seq))
        if p is not None and p.tries and not p.done.done():
            p.done.set_result(p.tries)

    def _enqueue(self, p: _Pending) -> None:
        heapq.heappush(self._queue, (p.rank, next(self._order), p))
        self._wake.set()

    def _forget(self, p: _Pending) -> None:
        self._pending.pop((p.unit_id, p.seq), None)
        if p.retry is not None:
            p.retry.cancel()

    async def _transmit(self) -> None:
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            _, _, p = heapq.heappop(self._queue)
            if p.done.done():
                continue
            if p.tries == 0 and not p.begin():
                p.done.set_exception(NotStarted())
                continue
            if p.tries and p.expired():
                p.done.set_exception(
                    NoticeFailed(f"not acknowledged before expires_at ({p.tries} sends)")
                )
                continue
            self.channel.write(p.frame)
            self.frames_sent += 1
            p.tries += 1
            p.retry = asyncio.get_running_loop().call_later(RETRY_S, self._retry, p)
            await asyncio.sleep(len(p.frame) * BITS_PER_BYTE / self.baudrate)

    def _retry(self, p: _Pending) -> None:
        if p.done.done():
            return
        if p.tries >= MAX_TRIES:
            p.done.set_exception(NoticeFailed(f"not acknowledged after {p.tries} sends"))
            return
        self._enqueue(p)

    def close(self) -> None:
        self._task.cancel()
        for p in list(self._pending.values()):
            if not p.done.done():
                p.done.set_exception(NoticeFailed("line closed"))
            self._forget(p)
