"""An asyncio lock whose waiters are served by rank (lower first), then in arrival order.

A shared RS-485 bus is polled device after device; a life-safety write must not queue
behind every poll already waiting. Holding this lock, a command waits only for the
exchange in progress.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

POLL_RANK = 100  # below every command priority (schemas.commands.CommandPriority)


class PriorityLock:
    def __init__(self) -> None:
        self._locked = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = 0

    def locked(self) -> bool:
        return self._locked

    async def acquire(self, rank: int = POLL_RANK) -> None:
        if not self._locked and not self._waiters:
            self._locked = True
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._arrivals += 1
        heapq.heappush(self._waiters, (rank, self._arrivals, fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # it was handed to us just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)  # ownership passes directly; the lock stays held
                return
        self._locked = False

    @asynccontextmanager
    async def at(self, rank: int) -> AsyncIterator[None]:
        await self.acquire(rank)
        try:
            yield
        finally:
            self.release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *_exc: object) -> None:
        self.release()
