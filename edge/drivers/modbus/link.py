"""Connections to Modbus peers, and the lock that keeps a shared bus free of collisions.

A serial RS-485 bus (or a serial-to-TCP converter speaking RTU) carries one frame
at a time: every slave id on it goes through the same :class:`Link`, which holds
an asyncio lock for the whole request/response exchange plus the bus's quiet
time, so frames never interleave. A Modbus TCP device gets a link of its own.

The lock serves waiters by rank (:mod:`edge.priority_lock`): a command's write (function
5, 6, 15 or 16) and its read-back hold it together, and wait only for the exchange in
progress, never for the polls queued behind it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from edge.config import Bus, Device, Function
from edge.drivers.modbus.spec import RTU_OVER_TCP, TCP
from edge.priority_lock import PriorityLock

log = logging.getLogger(__name__)

EXCEPTION_NAMES = {
    1: "ILLEGAL_FUNCTION",
    2: "ILLEGAL_DATA_ADDRESS",
    3: "ILLEGAL_DATA_VALUE",
    4: "SLAVE_DEVICE_FAILURE",
    5: "ACKNOWLEDGE",
    6: "SLAVE_DEVICE_BUSY",
    7: "NEGATIVE_ACKNOWLEDGE",
    8: "MEMORY_PARITY_ERROR",
    10: "GATEWAY_PATH_UNAVAILABLE",
    11: "GATEWAY_TARGET_NO_RESPONSE",
}


def crc16(data: bytes) -> int:
    """Modbus RTU CRC-16 (polynomial 0xA001, initial 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def bad_crc(frame: bytes, slave: int) -> bool:
    """Whether ``frame`` is a whole RTU response from ``slave`` whose CRC alone is wrong.

    The framer drops such a frame silently, so without this the poll ends in a timeout
    and the technician looks for a dead device rather than a noisy line.
    """
    if len(frame) < 5 or frame[0] != slave:
        return False
    size = 5 if frame[1] & 0x80 else 3 + frame[2] + 2
    if len(frame) != size:
        return False
    return crc16(frame[:-2]) != int.from_bytes(frame[-2:], "little")


class LinkError(Exception):
    """A request failed; ``reason`` is short and goes into the device status.

    ``link_down``: the peer is unreachable (timeout, connection lost, connect failed), so
    further requests in this poll would only wait out their timeouts too.
    """

    def __init__(self, reason: str, *, link_down: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.link_down = link_down


class NotStarted(Exception):
    """A write was called off before anything was sent (its command had expired)."""


class Link:
    """One pymodbus client plus the lock and pause that serialise its frames."""

    def __init__(self, key: str, client: Any, *, pause_s: float, rtu: bool = False) -> None:
        self.key = key
        self.client = client
        self.pause_s = pause_s
        self.rtu = rtu
        self.lock = PriorityLock()
        self.writes = 0
        self.users = 0
        self._rx = b""
        self._rx_at = 0.0  # loop time of the last bytes received
        client.ctx.trace_packet = self._trace
        client.ctx.trace_connect = self._trace_connect

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._rx_at = asyncio.get_running_loop().time()
            if len(self._rx) < 512:
                self._rx += data
        return data

    def _trace_connect(self, up: bool) -> None:
        # pymodbus would wait out the whole timeout for a peer that has hung up; fail now
        future = getattr(self.client.ctx, "response_future", None)
        if not up and future is not None and not future.done():
            future.set_exception(ConnectionException("connection lost"))

    async def _connect(self, timeout: float) -> None:
        if self.client.connected:
            return
        self.client.ctx.comm_params.timeout_connect = timeout
        try:
            ok = await self.client.connect()
        except (OSError, ModbusException) as exc:
            raise LinkError(f"connect failed: {exc}", link_down=True) from exc
        if not ok:
            raise LinkError("connect failed", link_down=True)

    async def request(
        self, function: Function, address: int, count: int, *, slave: int, timeout: float
    ) -> list[int] | list[bool]:
        async with self.lock:
            self._rx_at = 0.0
            try:
                return await self._request(function, address, count, slave, timeout)
            finally:
                await self._quiet()

    async def write(
        self,
        function: Function,
        address: int,
        values: list[int] | list[bool],
        *,
        slave: int,
        timeout: float,
        multiple: bool,
        rank: int,
        begin: Callable[[], bool],
    ) -> list[int] | list[bool]:
        """Write ``values`` and read them back, in one hold of the bus; returns the read-back.

        ``begin()`` runs with the bus held, right before the first byte goes out; when it
        returns False nothing is sent and :class:`NotStarted` is raised.
        """
        async with self.lock.at(rank):
            if not begin():
                raise NotStarted
            self._rx_at = 0.0
            try:
                await self._write(function, address, values, slave, timeout, multiple)
                await self._quiet()
                return await self._request(function, address, len(values), slave, timeout)
            finally:
                await self._quiet()

    async def _quiet(self) -> None:
        if self.pause_s:
            # the quiet time runs from the end of the last frame on the line, so
            # decoding the response overlaps it rather than adding to it
            loop = asyncio.get_running_loop()
            end = self._rx_at or loop.time()
            self._rx_at = 0.0
            await asyncio.sleep(max(0.0, end + self.pause_s - loop.time()))

    async def _write(
        self,
        function: Function,
        address: int,
        values: list[int] | list[bool],
        slave: int,
        timeout: float,
        multiple: bool,
    ) -> None:
        c = self.client
        if function is Function.COIL:
            bits = [bool(v) for v in values]
            if len(bits) == 1 and not multiple:
                await self._exchange(
                    lambda: c.write_coil(address, bits[0], slave=slave), slave, timeout
                )
            else:
                await self._exchange(
                    lambda: c.write_coils(address, bits, slave=slave), slave, timeout
                )
        elif function is Function.HOLDING:
            words = [int(v) for v in values]
            if len(words) == 1 and not multiple:
                await self._exchange(
                    lambda: c.write_register(address, words[0], slave=slave), slave, timeout
                )
            else:
                await self._exchange(
                    lambda: c.write_registers(address, words, slave=slave), slave, timeout
                )
        else:
            raise LinkError(f"a {function.value} register cannot be written")
        self.writes += 1

    async def _request(
        self, function: Function, address: int, count: int, slave: int, timeout: float
    ) -> list[int] | list[bool]:
        c = self.client
        if function is Function.HOLDING:
            rr = await self._exchange(
                lambda: c.read_holding_registers(address, count=count, slave=slave), slave, timeout
            )
        elif function is Function.INPUT:
            rr = await self._exchange(
                lambda: c.read_input_registers(address, count=count, slave=slave), slave, timeout
            )
        elif function is Function.COIL:
            rr = await self._exchange(
                lambda: c.read_coils(address, count=count, slave=slave), slave, timeout
            )
        else:
            rr = await self._exchange(
                lambda: c.read_discrete_inputs(address, count=count, slave=slave), slave, timeout
            )
        if function in (Function.COIL, Function.DISCRETE):
            bits = list(rr.bits)
            if len(bits) < count:
                raise LinkError(f"short response ({len(bits)} of {count} bits)")
            return bits[:count]
        regs = list(rr.registers)
        if len(regs) != count:
            raise LinkError(f"short response ({len(regs)} of {count} registers)")
        return regs

    async def _exchange(
        self, call: Callable[[], Awaitable[Any]], slave: int, timeout: float
    ) -> Any:
        """One request and its response, every failure turned into a LinkError reason."""
        await self._connect(timeout)
        c = self.client
        c.ctx.comm_params.timeout_connect = timeout
        self._rx = b""
        try:
            rr = await call()
        except ConnectionException as exc:
            raise LinkError("connection lost", link_down=True) from exc
        except ModbusIOException as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # pymodbus turns our cancellation into an I/O error; give it back
                raise asyncio.CancelledError from exc
            if not c.connected:
                raise LinkError("connection lost", link_down=True) from exc
            if self.rtu and bad_crc(self._rx, slave):
                raise LinkError("bad checksum") from exc
            if self._rx:
                raise LinkError(
                    f"garbage frame ({len(self._rx)} bytes, no valid response)"
                ) from exc
            raise LinkError("timeout", link_down=True) from exc
        except ModbusException as exc:
            raise LinkError(f"protocol error: {exc}") from exc
        if rr.isError():
            code = getattr(rr, "exception_code", 0)
            name = EXCEPTION_NAMES.get(code, f"code {code}")
            raise LinkError(f"modbus exception {name} ({code})")
        return rr

    def close(self) -> None:
        self.client.close()


_shared: dict[str, Link] = {}


def acquire(device: Device, bus: Bus | None) -> Link:
    """The link for ``device``: its own for Modbus TCP, shared per bus or converter."""
    if device.driver == TCP:
        client = AsyncModbusTcpClient(
            device.host or "",
            port=device.port or 502,
            timeout=device.timeout_s,
            retries=0,
            reconnect_delay=0,
        )
        link = Link(f"tcp:{device.id}", client, pause_s=0.0)
        link.users = 1
        return link
    if device.driver == RTU_OVER_TCP:
        key = f"rtutcp:{device.host}:{device.port}"
        if key not in _shared:
            client = AsyncModbusTcpClient(
                device.host or "",
                port=device.port or 502,
                framer=FramerType.RTU,
                timeout=device.timeout_s,
                retries=0,
                reconnect_delay=0,
            )
            _shared[key] = Link(key, client, pause_s=0.005, rtu=True)
    else:
        assert bus is not None
        key = f"serial:{bus.port}"
        if key not in _shared:
            serial_client = AsyncModbusSerialClient(
                bus.port,
                framer=FramerType.RTU,
                baudrate=bus.baudrate,
                bytesize=bus.bytesize,
                parity=bus.parity,
                stopbits=bus.stopbits,
                timeout=device.timeout_s,
                retries=0,
                reconnect_delay=0,
            )
            _shared[key] = Link(key, serial_client, pause_s=bus.pause_s, rtu=True)
    link = _shared[key]
    link.users += 1
    return link


def release(link: Link) -> None:
    link.users -= 1
    if link.users <= 0:
        link.close()
        _shared.pop(link.key, None)
