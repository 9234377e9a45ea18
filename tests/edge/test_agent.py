"""The agent against real peers: Mosquitto, pymodbus servers, ptys.

One gateway with a healthy meter, a meter answering exceptions, a hung meter, a GPS
line carrying only noise and a call unit. The test checks the device statuses and
reasons that reach the broker, the button press, the ACK, recovery after an outage,
the retained birth/meta/health messages, and the retained ``offline`` after stop.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import sqlite3
import threading
import time
import tty
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt import subscribe
from paho.mqtt.enums import CallbackAPIVersion

from edge.agent import Agent
from edge.config import parse_config
from edge.drivers.callunit.protocol import sentence
from edge.spool import Spool
from schemas import topics
from schemas.clock import SimClock
from schemas.codec import decode_batch
from tests.edge.peers import server_context, tcp_server
from tests.servers import Mosquitto, free_port


class Collector:
    def __init__(self, port: int, gateway: str) -> None:
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self.lock = threading.Lock()
        ready = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2)
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(f"{topics.ROOT}/{gateway}/#", qos=1)
        c.on_subscribe = lambda *a: ready.set()
        c.on_message = self._on
        c.connect("127.0.0.1", port)
        c.loop_start()
        assert ready.wait(10)
        self.client = c

    def _on(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, json.loads(msg.payload), msg.retain))

    def batches(self) -> list[Any]:
        with self.lock:
            return [
                decode_batch(json.dumps(p).encode())
                for t, p, _ in self.messages
                if t.endswith("/telemetry")
            ]

    def statuses(self, device: str) -> list[tuple[str, str | None]]:
        return [
            (s.state.value, s.reason)
            for b in self.batches()
            for s in b.statuses
            if s.device_id == device
        ]

    def readings(self, device: str) -> list[Any]:
        return [r for b in self.batches() for r in b.readings if r.device_id == device]

    def on(self, suffix: str) -> list[tuple[dict[str, Any], bool]]:
        with self.lock:
            return [(p, r) for t, p, r in self.messages if t.endswith(suffix)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def until(cond: Any, what: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def test_agent_reports_health_reasons_button_and_recovery(
    mosquitto: Mosquitto, tmp_path: Path, unique: str
) -> None:
    gateway = f"gw-agent-{unique}"
    sub = Collector(mosquitto.port, gateway)
    gps_master, gps_slave = os.openpty()
    cu_master, cu_slave = os.openpty()
    for fd in (gps_slave, cu_slave):
        tty.setraw(fd)

    async def go() -> None:
        ctx = server_context([1, 2])
        ctx[1].setValues(3, 0, [100])
        hung = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        meter_port = free_port()
        fast = {"poll_interval_s": 0.5, "timeout_s": 0.3, "retries": 0, "offline_after": 2}
        reg = [{"field": "totaliser", "address": 0}]
        cfg = parse_config(
            {
                "gateway": {
                    "id": gateway,
                    "spool_path": str(tmp_path / "spool.db"),
                    "batch_max_delay_s": 0.2,
                    "health_interval_s": 1.0,
                },
                "mqtt": {"host": "127.0.0.1", "port": mosquitto.port},
                "devices": [
                    {
                        "id": "wb-ok",
                        "kind": "water_block",
                        "driver": "modbus_tcp",
                        "host": "127.0.0.1",
                        "port": meter_port,
                        "unit_id": 1,
                        "registers": reg,
                        "report": "on_change",
                        **fast,
                    },
                    {
                        "id": "wb-exc",
                        "kind": "water_block",
                        "driver": "modbus_tcp",
                        "host": "127.0.0.1",
                        "port": meter_port,
                        "unit_id": 2,
                        "registers": [{"field": "totaliser", "address": 999}],
                        **fast,
                    },
                    {
                        "id": "wb-hung",
                        "kind": "water_block",
                        "driver": "modbus_tcp",
                        "host": "127.0.0.1",
                        "port": hung.sockets[0].getsockname()[1],
                        "unit_id": 1,
                        "registers": reg,
                        **fast,
                    },
                    {
                        "id": "bus-1",
                        "kind": "vehicle",
                        "driver": "nmea",
                        "serial_port": os.ttyname(gps_slave),
                        **fast,
                    },
                    {
                        "id": "cu-7",
                        "kind": "call_unit",
                        "driver": "call_unit",
                        "serial_port": os.ttyname(cu_slave),
                        "unit_id": 7,
                        "poll_interval_s": 60,
                    },
                ],
            }
        )
        agent = Agent(cfg)
        stop = asyncio.Event()
        async with tcp_server(ctx, port=meter_port):
            task = asyncio.create_task(agent.run(stop))
            await until(lambda: sub.readings("wb-ok"), "wb-ok reading")
            assert sub.statuses("wb-ok")[0] == ("online", None)
            os.write(gps_master, b"$GPRMC,1,A,3943.2,N,14006.6,E,1,1,011226,,,A*00\r\n" * 3)
            await until(lambda: sub.statuses("wb-exc"), "wb-exc offline")
            await until(lambda: sub.statuses("wb-hung"), "wb-hung offline")

            # a button press reaches the broker and the unit gets its ACK
            os.write(cu_master, sentence("AKCU,7,12,BTN,29.5,61.0"))
            await until(lambda: sub.readings("cu-7"), "button press")
            ack = b""
            while b"\n" not in ack:
                await until(lambda: select.select([cu_master], [], [], 0)[0], "ACK")
                ack += os.read(cu_master, 64)
            assert ack == sentence("AKAK,7,12")
            await until(lambda: sub.statuses("bus-1"), "bus-1 offline")
        # the meter server goes away: wb-ok goes offline, then comes back
        await until(lambda: len(sub.statuses("wb-ok")) == 2, "wb-ok offline")
        ctx[1].setValues(3, 0, [101])
        async with tcp_server(ctx, port=meter_port):
            await until(lambda: len(sub.statuses("wb-ok")) == 3, "wb-ok back online")
            await until(lambda: len(sub.readings("wb-ok")) == 2, "wb-ok new value")
            assert not task.done()
            await until(lambda: sub.on("/health"), "health")
            stop.set()
            await asyncio.wait_for(task, 15)
        hung.close()
        assert agent.stats.poll_errors > 0 and agent.stats.garbage_frames == 3

    try:
        asyncio.run(go())
    finally:
        sub.close()
        for fd in (gps_master, gps_slave, cu_master, cu_slave):
            os.close(fd)

    (exc_state, exc_reason), *_ = sub.statuses("wb-exc")
    assert exc_state == "offline" and "ILLEGAL_DATA_ADDRESS" in (exc_reason or "")
    assert sub.statuses("wb-hung")[0] == ("offline", "timeout")
    assert sub.statuses("bus-1")[0] == ("offline", "bad checksum")
    wb = sub.statuses("wb-ok")
    assert wb[0] == ("online", None) and wb[1][0] == "offline" and wb[2] == ("online", None)
    assert [r.values.totaliser for r in sub.readings("wb-ok")] == [100, 101]  # on change
    (press,) = sub.readings("cu-7")
    assert press.values.event == "button" and press.values.temperature == 29.5
    status = sub.on("/status")
    assert status[0][0]["state"] == "online" and status[-1][0]["state"] == "offline"
    spool = Spool(tmp_path / "spool.db")  # the birth names the spool's seq counter
    assert status[0][0]["boot_id"] == spool.boot_id
    spool.close()
    late = subscribe.simple(
        [topics.status(gateway), topics.meta(gateway)],
        hostname="127.0.0.1",
        port=mosquitto.port,
        msg_count=2,
        retained=True,
    )
    retained = {m.topic: json.loads(m.payload) for m in late}  # type: ignore[union-attr]
    assert retained[topics.status(gateway)]["state"] == "offline"
    meta = retained[topics.meta(gateway)]
    assert {d["device_id"] for d in meta["devices"]} == {
        "wb-ok",
        "wb-exc",
        "wb-hung",
        "bus-1",
        "cu-7",
    }
    health = sub.on("/health")[-1][0]
    assert health["devices_total"] == 5 and health["poll_errors"] > 0


def test_clock_file_times_and_paces_polls_in_simulated_time(tmp_path: Path) -> None:
    origin = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
    clock = tmp_path / "clock.json"
    speed = 20.0

    async def go() -> float:
        ctx = server_context([1])
        ctx[1].setValues(3, 0, [7])
        async with tcp_server(ctx) as port:
            cfg = parse_config(
                {
                    "gateway": {
                        "id": "gw-clock",
                        "spool_path": str(tmp_path / "spool.db"),
                        "clock_file": str(clock),
                    },
                    # no broker: readings stay in the spool, where the test reads them
                    "mqtt": {"host": "127.0.0.1", "port": free_port()},
                    "devices": [
                        {
                            "id": "wb-1",
                            "kind": "water_block",
                            "driver": "modbus_tcp",
                            "host": "127.0.0.1",
                            "port": port,
                            "unit_id": 1,
                            "poll_interval_s": 10.0,
                            "timeout_s": 5.0,
                            "report": "period",
                            "report_period_s": 10.0,
                            "registers": [{"field": "totaliser", "address": 0}],
                        }
                    ],
                }
            )
            SimClock(origin_real=time.time(), origin_sim=origin, speed=speed).write(clock)
            stop = asyncio.Event()
            task = asyncio.create_task(Agent(cfg).run(stop))
            await asyncio.sleep(2.0)
            stop.set()
            await task
        return time.time()

    started = time.time()
    ended = asyncio.run(go())
    with sqlite3.connect(tmp_path / "spool.db") as db:
        rows = [json.loads(b) for (b,) in db.execute("SELECT body FROM items WHERE status = 0")]
    stamps = [datetime.fromisoformat(r["ts"]).timestamp() for r in rows]
    assert len(stamps) >= 2
    assert all(origin <= t <= origin + (ended - started) * speed for t in stamps)
    slots = [int(t // 10) for t in stamps]
    assert slots == sorted(set(slots))  # one poll per 10 simulated seconds
