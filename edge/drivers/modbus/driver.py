"""The Modbus :class:`~edge.drivers.base.PollDriver`: coalesced reads, decoded values."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Any

from edge.config import Bus, Device, Function, Register
from edge.drivers.base import PollDriver
from edge.drivers.modbus import codec
from edge.drivers.modbus.link import Link, LinkError, acquire, release
from edge.drivers.modbus.plan import Block, plan
from edge.errors import DeviceError


class ModbusDriver(PollDriver):
    """Reads a device's register map in as few requests as the Modbus limits allow."""

    def __init__(self, device: Device, *, bus: Bus | None = None) -> None:
        super().__init__(device)
        self.bus = bus
        self.blocks: list[Block] = plan(list(device.registers))
        self._link: Link | None = None

    async def open(self) -> None:
        if self._link is None:
            self._link = acquire(self.device, self.bus)

    async def read(self) -> dict[str, Any]:
        """Every block that answers; the fields of those that fail go to ``missing``.

        Raises DeviceError (with the first failure's reason) only when nothing was read.
        """
        if self._link is None:
            await self.open()
        assert self._link is not None
        dev = self.device
        values: dict[str, Any] = {}
        missing: dict[str, str] = {}
        down: str | None = None
        for i, block in enumerate(self.blocks):
            if down is not None:  # the peer is gone: do not wait out a timeout per block
                missing.update(_fields(block, down))
                continue
            if i and dev.pause_s:
                await asyncio.sleep(dev.pause_s)  # slow devices need a breather
            self.requests += 1
            try:
                data = await self._link.request(
                    block.function,
                    block.address,
                    block.count,
                    slave=dev.unit_id,
                    timeout=dev.timeout_s,
                )
            except LinkError as exc:
                missing.update(_fields(block, exc.reason))
                down = exc.reason if exc.link_down else None
                continue
            values.update(_decode(block, data))
        self.missing = missing
        if not values:
            raise DeviceError(dev.id, next(iter(missing.values()), "nothing to read"))
        return values

    async def write(
        self, reg: Register, value: Any, *, multiple: bool, rank: int, begin: Callable[[], bool]
    ) -> tuple[Any, bool]:
        """Write ``value`` to ``reg`` (same type, order, scale as the read) and read it back.

        Returns (read-back value, whether the device holds exactly what was written).
        Raises DeviceError with the reason, or ``NotStarted`` when ``begin()`` said no.
        """
        if self._link is None:
            await self.open()
        assert self._link is not None
        try:
            encoded = codec.encode(reg, value)
        except (ValueError, OverflowError, struct.error) as exc:
            raise DeviceError(
                self.device.id, f"value {value!r} does not fit {reg.type.value}: {exc}"
            ) from exc
        written: list[int] | list[bool] = [encoded] if isinstance(encoded, bool) else encoded
        self.requests += 2
        try:
            back = await self._link.write(
                reg.function,
                reg.address,
                written,
                slave=self.device.unit_id,
                timeout=self.device.timeout_s,
                multiple=multiple,
                rank=rank,
                begin=begin,
            )
        except LinkError as exc:
            raise DeviceError(self.device.id, exc.reason) from exc
        if reg.function is Function.COIL:
            return bool(back[0]), bool(back[0]) == bool(written[0])
        words = [int(w) for w in back]
        return codec.decode(reg, words), words == list(written)

    async def close(self) -> None:
        if self._link is not None:
            release(self._link)
            self._link = None


def _fields(block: Block, reason: str) -> dict[str, str]:
    return {name: reason for reg in block.registers for name in reg.fields}


def _decode(block: Block, data: list[int] | list[bool]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    bitwise = block.function in (Function.COIL, Function.DISCRETE)
    for reg in block.registers:
        at = reg.address - block.address
        if bitwise:
            values.update(codec.decode_fields(reg, bit=bool(data[at])))
        else:
            words = [int(w) for w in data[at : at + reg.count]]
            values.update(codec.decode_fields(reg, words))
    return values
