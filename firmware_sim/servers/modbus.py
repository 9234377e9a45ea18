"""Modbus servers whose registers are computed lazily from the models at request time.

A :class:`LazySlaveContext` answers ``getValues`` by encoding the model's state at the
current simulated time, so thousands of devices cost nothing until they are polled. An
offline device raises ``NoSuchSlaveException``; with ``ignore_missing_slaves`` the
server then sends nothing and the client times out, exactly like a dead RS-485 node.
Reads outside the device's register windows get exception 02 (illegal data address);
writes get exception 01 (the simulated devices are read-only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tty
from collections.abc import Callable, Mapping, Sequence

from pymodbus.datastore import ModbusServerContext
from pymodbus.datastore.context import ModbusBaseSlaveContext
from pymodbus.exceptions import ModbusIOException, NoSuchSlaveException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse
from pymodbus.server import ModbusTcpServer

from firmware_sim.models.base import DeviceModel
from firmware_sim.registers import RegisterMap

log = logging.getLogger(__name__)
Clock = Callable[[], float]


class _QuietOffline(logging.Filter):
    """pymodbus logs every request to an absent unit at ERROR; for us that is an offline
    device doing what it should (the edge reports it), so keep it out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "requested slave does not exist" not in record.getMessage()


logging.getLogger("pymodbus").addFilter(_QuietOffline())
logging.getLogger("pymodbus.logging").addFilter(_QuietOffline())


class LazySlaveContext(ModbusBaseSlaveContext):
    """One device behind a unit id; registers computed from its model on each read."""

    def __init__(self, model: DeviceModel, regmap: RegisterMap, clock: Clock) -> None:
        self.model = model
        self.regmap = regmap
        self.clock = clock
        self.reads = 0

    def reset(self) -> None:
        """Nothing to reset: the model is the state."""

    def getValues(self, fc_as_hex: int, address: int, count: int = 1) -> Sequence[int] | int:  # type: ignore[override]
        t = self.clock()
        if not self.model.online(t):
            raise NoSuchSlaveException(f"{self.model.device_id} is offline")
        fc = {3: 3, 4: 4, 6: 3, 16: 3, 23: 3}.get(fc_as_hex)
        if fc is None or fc not in self.regmap.windows:
            return ExceptionResponse.ILLEGAL_FUNCTION
        if not any(a <= address and address + count <= b for a, b in self.regmap.windows[fc]):
            return ExceptionResponse.ILLEGAL_ADDRESS
        regs = self.regmap.encode(self.model, t).get(fc, {})
        self.reads += 1
        return [regs.get(a, 0) for a in range(address, address + count)]

    def setValues(self, fc_as_hex: int, address: int, values: Sequence[int | bool]) -> int:  # type: ignore[override]
        if not self.model.online(self.clock()):
            raise NoSuchSlaveException(f"{self.model.device_id} is offline")
        return ExceptionResponse.ILLEGAL_FUNCTION


class TcpListener:
    """One Modbus TCP listener serving many unit ids (a gateway's field network)."""

    def __init__(self, name: str, host: str, units: dict[int, LazySlaveContext]) -> None:
        if not units or max(units) > 247 or min(units) < 1:
            raise ValueError(f"listener {name}: unit ids must be 1..247 (got {sorted(units)[:5]})")
        self.name = name
        self.host = host
        self.units = units
        self.port = 0
        self._server: ModbusTcpServer | None = None

    async def start(self, port: int = 0) -> int:
        ctx = ModbusServerContext(slaves=dict(self.units), single=False)
        server = ModbusTcpServer(ctx, address=(self.host, port), ignore_missing_slaves=True)
        await server.serve_forever(background=True)
        if server.transport is None:
            raise OSError(f"listener {self.name}: could not listen on {self.host}:{port}")
        sockets = server.transport.sockets  # type: ignore[attr-defined]
        self.port = int(sockets[0].getsockname()[1])
        self._server = server
        log.info(
            "modbus_tcp_listening name=%s port=%d units=%d", self.name, self.port, len(self.units)
        )
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None


BITS_PER_CHAR = 11  # start + 8 data + parity or second stop + stop (Modbus RTU)
GAP_CHARS = 3.5  # the silent interval that ends an RTU frame
SPIN_S = 0.001  # the last stretch of a hold is waited out busily, for precision


def wire_time(chars: float, baudrate: int) -> float:
    """Seconds that ``chars`` characters occupy an RTU line at ``baudrate``."""
    return chars * BITS_PER_CHAR / baudrate


class RtuPtyBus:
    """An RS-485 bus on a pty pair: the edge opens ``path``; we answer on the master.

    pymodbus's serial server needs a path it can open, and a pty master has none, so the
    bus loop is ours: pymodbus's RTU framer and PDUs decode and execute each request.

    A pty moves bytes at memory speed. With ``baudrate`` the bus holds each exchange for
    its wire time instead: a response is released when the request would have finished
    arriving, plus the 3.5-character gap that ends it, plus the response's own length.
    """

    def __init__(
        self,
        name: str,
        units: Mapping[int, ModbusBaseSlaveContext],
        *,
        baudrate: int | None = None,
    ) -> None:
        self.name = name
        self.units = units
        self.baudrate = baudrate
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line discipline: a plain byte pipe
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self._buf = b""
        self._framer = FramerRTU(DecodePDU(True))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.master, self._readable)
        log.info("modbus_rtu_pty name=%s path=%s units=%d", self.name, self.path, len(self.units))
        return self.path

    def _readable(self) -> None:
        arrived = self._loop_time()
        try:
            data = os.read(self.master, 4096)
        except BlockingIOError:
            return
        except OSError:  # EIO while no one holds the slave open
            return
        self._buf += data
        if len(self._buf) > 1024:
            self._buf = self._buf[-256:]
        while self._buf:
            try:
                used, pdu = self._framer.processIncomingFrame(self._buf)
            except ModbusIOException:
                self._buf = b""
                return
            if not used:
                return
            self._buf = self._buf[used:]
            if pdu is not None:
                task = asyncio.ensure_future(self._answer(pdu, used, arrived))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _loop_time(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    async def _answer(self, pdu: object, request_size: int, arrived: float) -> None:
        dev_id = getattr(pdu, "dev_id", 0)
        ctx = self.units.get(dev_id)
        if ctx is None:
            return  # another node's address: stay silent, as on a real bus
        try:
            response = await pdu.update_datastore(ctx)  # type: ignore[attr-defined]
        except NoSuchSlaveException:
            return  # offline node
        response.dev_id = dev_id
        frame = self._framer.buildFrame(response)
        if self.baudrate:
            chars = request_size + GAP_CHARS + len(frame)
            due = arrived + wire_time(chars, self.baudrate)
            await asyncio.sleep(max(0.0, due - SPIN_S - self._loop_time()))
            while self._loop_time() < due:  # a timer wakes late by up to a ms; a line does not
                pass
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self.master, frame)

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.master)
        for task in list(self._tasks):
            task.cancel()
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
