"""The Modbus :class:`~edge.drivers.base.PollDriver`: coalesced reads, decoded values."""

from __future__ import annotations

import asyncio
from typing import Any

from edge.config import Bus, Device, Function
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
        if self._link is None:
            await self.open()
        assert self._link is not None
        dev = self.device
        values: dict[str, Any] = {}
        for i, block in enumerate(self.blocks):
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
                raise DeviceError(dev.id, exc.reason) from exc
            bitwise = block.function in (Function.COIL, Function.DISCRETE)
            for reg in block.registers:
                at = reg.address - block.address
                if bitwise:
                    values.update(codec.decode_fields(reg, bit=bool(data[at])))
                else:
                    words = [int(w) for w in data[at : at + reg.count]]
                    values.update(codec.decode_fields(reg, words))
        return values

    async def close(self) -> None:
        if self._link is not None:
            release(self._link)
            self._link = None
