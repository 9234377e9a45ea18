"""50 simulated pump-station PLCs behind one pymodbus TCP server (a separate process).

Each unit id has 4 input registers that change every second: level (int16 mm),
pump currents (int16 0.1 A) and a fault code. Run: ``python -m bench.edge.devices PORT N``.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.server import ModbusTcpServer


async def main(port: int, n: int) -> None:
    slaves = {
        u: ModbusSlaveContext(ir=ModbusSequentialDataBlock(0, [0] * 10)) for u in range(1, n + 1)
    }
    ctx = ModbusServerContext(slaves=slaves, single=False)
    server = ModbusTcpServer(ctx, address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    print("ready", flush=True)
    while True:
        t = time.time()
        for u in range(1, n + 1):
            level = int(1500 + 800 * math.sin(t / 30 + u))
            amps = int(120 + 40 * math.sin(t / 7 + u))
            ctx[u].setValues(4, 0, [level, amps, (amps * 3) // 4, int(t) % 3])
        await asyncio.sleep(1.0)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
