"""Real Modbus peers for the edge tests: pymodbus servers over TCP and over a pty pair.

A serial "cable" is two ptys joined by a relay thread: the pymodbus RTU server opens
one end, the edge the other. The relay records every chunk with its direction so a
test can check that frames never interleave, and can corrupt the line on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import threading
import time
import tty
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from pymodbus import FramerType
from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from tests.servers import free_port

FC = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}


class StrictBlock(ModbusSequentialDataBlock):
    """Answers ILLEGAL_DATA_ADDRESS outside its range, as real devices do."""

    def getValues(self, address: int, count: int = 1) -> Any:
        if address < self.address or address + count > self.address + len(self.values):
            return 2
        return super().getValues(address, count)


def slave_context(size: int = 400) -> ModbusSlaveContext:
    # pymodbus 3.9 adds 1 to every protocol address: index 0 of each block is unused
    return ModbusSlaveContext(
        di=StrictBlock(0, [False] * (size + 1)),
        co=StrictBlock(0, [False] * (size + 1)),
        hr=StrictBlock(0, [0] * (size + 1)),
        ir=StrictBlock(0, [0] * (size + 1)),
    )


def server_context(unit_ids: list[int], size: int = 400) -> ModbusServerContext:
    return ModbusServerContext(slaves={u: slave_context(size) for u in unit_ids}, single=False)


@contextlib.asynccontextmanager
async def tcp_server(
    context: ModbusServerContext, framer: FramerType = FramerType.SOCKET, port: int = 0
) -> AsyncIterator[int]:
    """A pymodbus TCP server (or RTU-over-TCP with framer RTU) on ``port`` or a free one."""
    port = port or free_port()
    server = ModbusTcpServer(context, framer=framer, address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    await _wait_listening(port)
    try:
        yield port
    finally:
        await server.shutdown()


async def _wait_listening(port: int) -> None:
    for _ in range(200):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.02)
    raise TimeoutError(f"modbus server on {port} did not listen")


@dataclass
class PtyCable:
    """Two ptys joined by a relay: ``device_path`` for the server, ``host_path`` for edge."""

    device_path: str = ""
    host_path: str = ""
    log: list[tuple[float, str, bytes]] = field(default_factory=list)
    corrupt: bool = False  # replace every device->host chunk with line noise
    bad_crc: bool = False  # flip the last CRC byte of every device->host chunk
    _fds: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def open(self) -> PtyCable:
        dm, ds = os.openpty()
        hm, hs = os.openpty()
        for fd in (dm, ds, hm, hs):
            tty.setraw(fd)
        self._fds = [dm, ds, hm, hs]
        self.device_path, self.host_path = os.ttyname(ds), os.ttyname(hs)
        self._dm, self._hm = dm, hm
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()
        return self

    def _relay(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._dm, self._hm], [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                if fd == self._hm:
                    self.log.append((time.monotonic(), "req", data))
                    os.write(self._dm, data)
                else:
                    if self.corrupt:
                        data = bytes((b * 7 + 13) & 0xFF for b in data) + b"\x55\xaa"
                    if self.bad_crc:
                        data = data[:-1] + bytes([data[-1] ^ 0xFF])
                    self.log.append((time.monotonic(), "resp", data))
                    os.write(self._hm, data)

    def inject(self, data: bytes) -> None:
        """Write bytes towards the host as if the device had sent them."""
        os.write(self._hm, data)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)


@contextlib.asynccontextmanager
async def rtu_server(context: ModbusServerContext, cable: PtyCable) -> AsyncIterator[None]:
    server = ModbusSerialServer(
        context, framer=FramerType.RTU, port=cable.device_path, baudrate=115200
    )
    await server.serve_forever(background=True)
    await asyncio.sleep(0.1)
    try:
        yield
    finally:
        await server.shutdown()


@contextlib.contextmanager
def server_thread(context: ModbusServerContext) -> Iterator[int]:
    """A pymodbus TCP server on its own thread and loop (for sync callers and subprocesses)."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        state["loop"] = asyncio.get_running_loop()
        state["stop"] = asyncio.Event()
        async with tcp_server(context) as port:
            state["port"] = port
            ready.set()
            await state["stop"].wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "modbus server thread did not start"
    try:
        yield int(state["port"])
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(10)
