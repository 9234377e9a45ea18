"""Modbus client load for the simulator benchmark (runs in its own process)."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time


def client_proc(
    targets: list[tuple[int, list[tuple[int, int, int]]]],
    clients: int,
    seconds: float,
    out: mp.Queue,
) -> None:  # type: ignore[type-arg]
    asyncio.run(_clients(targets, clients, seconds, out))


async def _clients(
    targets: list[tuple[int, list[tuple[int, int, int]]]],
    clients: int,
    seconds: float,
    out: mp.Queue,
) -> None:  # type: ignore[type-arg]
    from pymodbus.client import AsyncModbusTcpClient

    ok = 0
    errors = 0
    deadline = time.monotonic() + seconds

    async def one(i: int) -> None:
        nonlocal ok, errors
        port, units = targets[i % len(targets)]
        c = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        await c.connect()
        k = i
        try:
            while time.monotonic() < deadline:
                unit, fc, count = units[k % len(units)]
                k += 1
                try:
                    if fc == 4:
                        r = await c.read_input_registers(0, count=count, slave=unit)
                    else:
                        r = await c.read_holding_registers(0, count=count, slave=unit)
                    if r.isError():
                        errors += 1
                    else:
                        ok += 1
                except Exception:  # a timed-out read in a benchmark counts as an error
                    errors += 1
        finally:
            c.close()

    await asyncio.gather(*(one(i) for i in range(clients)))
    out.put({"ok": ok, "errors": errors})
