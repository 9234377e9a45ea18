"""A simulated RS-485 bus with one TUF-2000M, holding each exchange for its wire time.

Run: ``python -m bench.edge.rtu_bus BAUD``; prints the pty path the edge opens, then
serves until killed. A process of its own, so the meter does not share the edge's loop.
"""

from __future__ import annotations

import asyncio
import sys

from firmware_sim.servers.modbus import RtuPtyBus
from firmware_sim.tuf2000m import Tuf2000m, Tuf2000mContext


async def main(baudrate: int) -> None:
    bus = RtuPtyBus("bench-rtu", {1: Tuf2000mContext(Tuf2000m())}, baudrate=baudrate)
    print(await bus.start(), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
