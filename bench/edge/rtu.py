"""Polls per second on a simulated RTU line against the limit its frame sizes set.

One TUF-2000M on a bus that holds every exchange for its wire time (11 bits per
character). One poll reads registers 0-11 (flow, totaliser, fraction) in one request:

    request  8 characters (address, function, start, count, CRC)
    response 5 + 2 x 12 = 29 characters
    gaps     3.5 characters after each frame (the RTU end of frame)

so the line allows baud / 11 / (8 + 29 + 7) polls per second. The edge's bus
``pause_s`` is set to the 3.5-character gap it owes after each response.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from edge.config import parse_config
from edge.drivers import PollDriver, create
from firmware_sim.servers.modbus import GAP_CHARS, wire_time

ROOT = Path(__file__).resolve().parents[2]
REGISTERS = 12
REQUEST_CHARS = 8
RESPONSE_CHARS = 5 + 2 * REGISTERS


@dataclass(frozen=True)
class RtuResult:
    baudrate: int
    polls: int
    seconds: float
    limit_per_s: float

    @property
    def per_s(self) -> float:
        return self.polls / self.seconds

    @property
    def ratio(self) -> float:
        return self.per_s / self.limit_per_s


def line_limit(baudrate: int) -> float:
    """Polls per second the line allows: both frames and both end-of-frame gaps."""
    return 1.0 / wire_time(REQUEST_CHARS + RESPONSE_CHARS + 2 * GAP_CHARS, baudrate)


async def _poll(path: str, baudrate: int, duration: float) -> tuple[int, float]:
    cfg = parse_config(
        {
            "gateway": {"id": "gw-bench-rtu"},
            "buses": [
                {
                    "name": "rs485",
                    "port": path,
                    "baudrate": baudrate,
                    "stopbits": 2,  # 11 bits per character, like 8E1
                    "pause_s": wire_time(GAP_CHARS, baudrate),
                }
            ],
            "devices": [
                {
                    "id": "tuf-1",
                    "kind": "water_block",
                    "driver": "modbus_rtu",
                    "bus": "rs485",
                    "unit_id": 1,
                    "timeout_s": 1.0,
                    "registers": [
                        {"field": "flow", "address": 0, "type": "float32", "order": "CDAB"},
                        {"field": "totaliser", "address": 8, "type": "int32", "order": "CDAB"},
                        {"field": "fraction", "address": 10, "type": "float32", "order": "CDAB"},
                        # registers 2-7 are read too, to make one request of 12
                        {"field": "pad", "address": 2, "type": "uint64"},
                        {"field": "pad2", "address": 6, "type": "uint32"},
                    ],
                    "extra_fields": [{"name": n} for n in ("fraction", "pad", "pad2")],
                }
            ],
        }
    )
    drv = create(cfg.devices[0], cfg)
    assert isinstance(drv, PollDriver)
    await drv.open()
    for _ in range(3):  # open the line, settle
        await drv.read()
    polls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < duration:
        await drv.read()
        polls += 1
    seconds = time.perf_counter() - t0
    assert drv.requests == polls + 3, "one request per poll"
    await drv.close()
    return polls, seconds


def bench_rtu(baudrate: int, duration: float) -> RtuResult:
    sim = subprocess.Popen(
        [sys.executable, "-m", "bench.edge.rtu_bus", str(baudrate)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert sim.stdout is not None
        path = sim.stdout.readline().decode().strip()
        polls, seconds = asyncio.run(_poll(path, baudrate, duration))
    finally:
        sim.terminate()
        sim.wait(10)
    return RtuResult(baudrate, polls, seconds, line_limit(baudrate))
