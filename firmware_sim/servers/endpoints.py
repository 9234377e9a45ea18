"""Byte-stream endpoints for the line protocols: a pty pair or a TCP listener.

Both expose ``write(bytes)`` (to whoever is listening; dropped when nobody reads, as
a serial line drops bytes into the void) and deliver received bytes to ``on_data``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tty
from collections.abc import Callable

log = logging.getLogger(__name__)
MAX_BUFFERED = 256 * 1024


class PtyEndpoint:
    """The device side of a pty pair; the edge opens ``path`` (the slave) as a serial port."""

    kind = "pty"

    def __init__(self, name: str, on_data: Callable[[bytes], None] | None = None) -> None:
        self.name = name
        self.on_data = on_data
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self.dropped = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def address(self) -> str:
        return self.path

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except OSError:
            return
        if data and self.on_data is not None:
            self.on_data(data)

    @property
    def has_listener(self) -> bool:
        return True  # cannot tell who holds the slave open; the kernel buffers a little

    def write(self, data: bytes) -> None:
        try:
            os.write(self.master, data)
        except (BlockingIOError, OSError):
            self.dropped += 1  # nobody is reading: the line buffer is full

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.master)
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class TcpEndpoint:
    """A TCP listener carrying the same bytes as the serial line (a serial-to-IP modem)."""

    kind = "tcp"

    def __init__(
        self, name: str, host: str, on_data: Callable[[bytes], None] | None = None
    ) -> None:
        self.name = name
        self.host = host
        self.port = 0
        self.on_data = on_data
        self.dropped = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._client, self.host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while data := await reader.read(4096):
                if self.on_data is not None:
                    self.on_data(data)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    @property
    def has_listener(self) -> bool:
        return bool(self._writers)

    def write(self, data: bytes) -> None:
        for w in list(self._writers):
            if w.is_closing():
                self._writers.discard(w)
            elif w.transport.get_write_buffer_size() > MAX_BUFFERED:
                self.dropped += 1  # a stalled client: drop rather than grow without bound
            else:
                w.write(data)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        self._server = None


Endpoint = PtyEndpoint | TcpEndpoint
