"""City-scale fleet benchmark: ``python -m bench.sim [--seconds 10] [--clients 32]``.

1. Starts the city fleet (41 water blocks, 200 pump stations, 50 flood sensors, 300
   buses, 1,000 snowplows, 2,000 call units) in this process and times it; prints RSS.
2. Drives the Modbus TCP listeners from a separate client process (``--clients``
   concurrent pymodbus clients, each cycling over the units of one listener, reading
   the block an edge reads) for ``--seconds``, and prints the reads per second the
   simulator served (counted on the server side and confirmed by the clients).

Figures on a shared 2-core machine are noisy; run it alone for numbers you can quote.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.sim.clients import client_proc


async def main(seconds: float, clients: int, scenario: str) -> None:
    from firmware_sim.fleet import start_fleet
    from schemas.devices import DeviceKind

    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        fleet = await start_fleet(scenario, scale="city", speed=60.0, workdir=Path(tmp))
        startup = time.perf_counter() - t0
        rss = proc.memory_info().rss
        counts: dict[str, int] = {}
        for d in fleet.run.plan.devices:
            key = d.info.vehicle_type.value if d.info.vehicle_type else d.kind.value
            counts[key] = counts.get(key, 0) + 1
        targets = []
        for lis in fleet.listeners:
            units = []
            for uid, ctx in lis.units.items():
                kind = fleet.run.plan.by_id(ctx.model.device_id).kind
                units.append((uid, 4, 9) if kind is DeviceKind.MANHOLE_PUMP else (uid, 3, 10))
            targets.append((lis.port, units))
        reads0 = fleet.modbus_reads()
        cpu0 = proc.cpu_times()
        q: mp.Queue = mp.get_context("spawn").Queue()  # type: ignore[type-arg]
        p = mp.get_context("spawn").Process(target=client_proc, args=(targets, clients, seconds, q))
        t1 = time.perf_counter()
        p.start()
        # keep this event loop serving while the client process hammers it
        while p.is_alive():
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - t1
        result = q.get(timeout=5)
        served = fleet.modbus_reads() - reads0
        cpu1 = proc.cpu_times()
        await fleet.stop()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    figures = {
        "devices": counts,
        "gateways": len(fleet.edge_configs),
        "modbus_listeners": len(fleet.listeners),
        "nmea_streams": len(fleet.streams),
        "akcu_lines": len(fleet.lines),
        "startup_s": round(startup, 2),
        "rss_mb": round(rss / 2**20, 1),
        "rss_growth_mb": round((rss - rss0) / 2**20, 1),
        "clients": clients,
        "seconds": round(elapsed, 1),
        "reads_ok": result["ok"],
        "read_errors": result["errors"],
        "reads_per_s_served": round(served / elapsed, 1),
        "server_cpu_s": round(cpu, 2),
        "cores": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    for k, v in figures.items():
        print(f"{k:>20}: {v}")
    print(json.dumps(figures), file=sys.stderr)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the read phase")
    ap.add_argument("--clients", type=int, default=32, help="concurrent Modbus clients")
    ap.add_argument("--scenario", default="normal_week")
    a = ap.parse_args()
    asyncio.run(main(a.seconds, a.clients, a.scenario))
