"""The agent keeps a device online while one register block fails, and never publishes
a NaN, an Inf or an out-of-range value (it logs it, per field, rate-limited)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import struct
import time
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from edge.agent import Agent
from edge.config import Register, parse_config
from edge.drivers.modbus import codec
from tests.edge.peers import StrictBlock, server_context, server_thread
from tests.servers import free_port

SERVE_DELAY_S = 0.15


class SlowBlock(StrictBlock):
    """Holding registers that take a while to answer, and remember when they were asked."""

    asked: ClassVar[list[float]] = []

    def getValues(self, address: int, count: int = 1) -> Any:
        SlowBlock.asked.append(time.time())
        time.sleep(SERVE_DELAY_S)  # the server runs on its own thread
        return super().getValues(address, count)


def _words(field: str, type_: str, value: Any, **kw: Any) -> list[int]:
    encoded = codec.encode(Register(field=field, address=0, type=type_, **kw), value)
    assert isinstance(encoded, list)
    return encoded


def test_partial_failure_and_untrusted_values(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = server_context([1], size=50)
    ctx[1].store["h"] = SlowBlock(0, [0] * 51)
    ctx[1].setValues(3, 0, _words("flow", "float32", 12.5, order="CDAB"))
    ctx[1].setValues(3, 10, _words("pressure", "float32", float("nan")))
    ctx[1].setValues(3, 12, _words("x", "float32", float("inf")))
    ctx[1].setValues(3, 20, [(7 << 8) | 120])  # signal quality 120 > 99: out of its range
    SlowBlock.asked.clear()
    registers = [
        {"field": "flow", "address": 0, "type": "float32", "order": "CDAB"},
        {"field": "pressure", "address": 10, "type": "float32"},
        {"field": "totaliser", "address": 12, "type": "float32"},
        {"field": "signal_quality", "address": 20, "type": "uint8", "byte": "low"},
        {"field": "temperature_t1", "address": 300, "type": "float32"},  # exception 02
    ]
    with server_thread(ctx) as port:
        cfg = parse_config(
            {
                "gateway": {"id": "gw-q", "spool_path": str(tmp_path / "spool.db")},
                "mqtt": {"host": "127.0.0.1", "port": free_port()},  # no broker: read the spool
                "devices": [
                    {
                        "id": "wb-1",
                        "kind": "water_block",
                        "driver": "modbus_tcp",
                        "host": "127.0.0.1",
                        "port": port,
                        "unit_id": 1,
                        "poll_interval_s": 0.5,
                        "timeout_s": 2.0,
                        "report": "period",
                        "report_period_s": 0.5,
                        "offline_after": 1,
                        "registers": registers,
                        "extra_fields": [
                            {"name": "signal_quality", "min": 0, "max": 99},
                            {"name": "temperature_t1", "unit": "°C", "min": -40, "max": 150},
                        ],
                    }
                ],
            }
        )

        async def go() -> Agent:
            agent = Agent(cfg)
            stop = asyncio.Event()
            task = asyncio.create_task(agent.run(stop))
            while agent.stats.readings_polled < 3:
                await asyncio.sleep(0.05)
            stop.set()
            await task
            return agent

        with caplog.at_level(logging.WARNING):
            agent = asyncio.run(go())
    with sqlite3.connect(tmp_path / "spool.db") as db:
        rows = [(s, json.loads(b)) for s, b in db.execute("SELECT status, body FROM items")]
    readings = [b for s, b in rows if s == 0]
    states = [b["state"] for s, b in rows if s == 1]
    assert states == ["online"]  # one block failing never takes the device offline
    assert len(readings) >= 3
    assert all(r["values"] == {"flow": 12.5} for r in readings)
    # stamped when the response arrived: after the slow device was asked and had answered
    stamps = [datetime.fromisoformat(r["ts"]).timestamp() for r in readings]
    first_ask = SlowBlock.asked[0]
    assert stamps[0] >= first_ask + SERVE_DELAY_S
    st = agent.stats
    assert st.invalid_values >= 9 and st.missing_fields >= 3  # 3 bad + 1 missing per poll
    events = [r.getMessage() for r in caplog.records if r.name == "edge.quality"]
    assert sorted(events) == sorted(
        [
            "value_invalid device=wb-1 field=pressure value=nan reason=not a number",
            "value_invalid device=wb-1 field=totaliser value=inf reason=infinite",
            "value_invalid device=wb-1 field=signal_quality value=120 reason=out of range (0..99)",
            "field_missing device=wb-1 field=temperature_t1 "
            "reason=modbus exception ILLEGAL_DATA_ADDRESS (2)",
        ]
    )  # once each, though every poll saw them


def test_float32_nan_encodes_as_nan() -> None:
    # guards the fixture above: the server really holds a NaN, not a zero
    words = _words("p", "float32", float("nan"))
    (value,) = struct.unpack(">f", struct.pack(">HH", *words))
    assert value != value
