"""The no-loss test: 50 Modbus devices at 1 Hz through a broker outage and a kill -9.

Each simulated device hands out a fresh sample number (``totaliser``) on every read,
and the server records what it served and when. The edge runs as a real subprocess
(``python -m akita edge run``). Mosquitto is stopped for 60 s and started again;
later the edge is killed with SIGKILL and restarted. A persistent-session QoS 1
subscriber must then hold every served sample exactly once, in order per device.

QoS 1 is at-least-once: a batch whose PUBACK was lost is sent again with the same
``seq`` and the same payload, and the subscriber (like the cloud ingest) counts each
seq once. The only samples allowed to be missing are ones served in the last second
before the SIGKILL (read by the edge but not yet committed to its spool).
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import tomli_w
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.datastore import ModbusServerContext, ModbusSlaveContext

from schemas import topics
from tests.edge.peers import StrictBlock, tcp_server
from tests.servers import Mosquitto

ROOT = Path(__file__).resolve().parents[2]
DEVICES = 50
OUTAGE_S = 60


class CountingBlock(StrictBlock):
    """Holding registers whose register 0-1 (uint32) is a new sample number on every read."""

    def __init__(self, unit: int, served: dict[int, list[tuple[float, int]]]) -> None:
        super().__init__(0, [0] * 11)
        self.unit = unit
        self.served = served
        self.counter = 0

    def getValues(self, address: int, count: int = 1) -> Any:
        if address == 1:  # protocol address 0 (pymodbus adds 1)
            self.counter += 1
            self.served[self.unit].append((time.monotonic(), self.counter))
            self.values[1:3] = [self.counter >> 16, self.counter & 0xFFFF]
        return super().getValues(address, count)


class DeviceFarm:
    """One pymodbus TCP server with 50 unit ids, on its own thread and event loop."""

    def __init__(self) -> None:
        self.served: dict[int, list[tuple[float, int]]] = collections.defaultdict(list)
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        slaves = {
            u: ModbusSlaveContext(
                hr=CountingBlock(u, self.served),
                ir=StrictBlock(0, [0] * 11),
                co=StrictBlock(0, [False] * 11),
                di=StrictBlock(0, [False] * 11),
            )
            for u in range(1, DEVICES + 1)
        }
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with tcp_server(ModbusServerContext(slaves=slaves, single=False)) as port:
            self.port = port
            self._ready.set()
            await self._stop.wait()

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


class Subscriber:
    """Persistent session, QoS 1: the broker keeps its messages while it is away."""

    def __init__(self, port: int, topic: str, client_id: str) -> None:
        self.batches: list[dict[str, Any]] = []
        self.raw: dict[int, bytes] = {}
        self.duplicates = 0
        self.lock = threading.Lock()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        c.reconnect_delay_set(1, 2)
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(topic, qos=1)
        c.on_message = self._message
        self.subscribed = threading.Event()
        c.on_subscribe = lambda *a: self.subscribed.set()
        c.connect("127.0.0.1", port)
        c.loop_start()
        assert self.subscribed.wait(10)
        self.client = c

    def _message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        batch = json.loads(msg.payload)
        with self.lock:
            seq = batch["seq"]
            if seq in self.raw:
                assert self.raw[seq] == msg.payload, f"seq {seq} re-sent with a different payload"
                self.duplicates += 1
                return
            self.raw[seq] = msg.payload
            self.batches.append(batch)

    def readings(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for b in self.batches for r in b["readings"]]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def write_config(path: Path, mqtt_port: int, modbus_port: int, gateway: str) -> None:
    cfg = {
        "gateway": {
            "id": gateway,
            "spool_path": str(path.parent / "spool.db"),
            "batch_max_delay_s": 0.5,
            "health_interval_s": 5.0,
        },
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "reconnect_max_s": 2.0},
        "devices": [
            {
                "id": f"wb-{u:02d}",
                "kind": "water_block",
                "driver": "modbus_tcp",
                "host": "127.0.0.1",
                "port": modbus_port,
                "unit_id": u,
                "poll_interval_s": 1.0,
                "timeout_s": 0.5,
                "retries": 0,
                "report": "period",
                "report_period_s": 1.0,
                "registers": [
                    {"field": "totaliser", "address": 0, "type": "uint32"},
                    {"field": "flow", "address": 2, "type": "float32"},
                    {"field": "pressure", "address": 4, "type": "int16", "scale": 0.001},
                ],
            }
            for u in range(1, DEVICES + 1)
        ],
    }
    path.write_text(tomli_w.dumps(cfg))


def start_edge(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "akita", "edge", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_for(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def spooled(db: Path) -> set[tuple[str, str]]:
    """(device, ts) of every reading in the spool file, committed or batched."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out: set[tuple[str, str]] = set()
        for (body,) in con.execute("SELECT body FROM items WHERE status = 0"):
            r = json.loads(body)
            out.add((r["device_id"], r["ts"]))
        for (payload,) in con.execute("SELECT payload FROM batches"):
            out |= {(r["device_id"], r["ts"]) for r in json.loads(payload)["readings"]}
        return out
    finally:
        con.close()


def test_nothing_is_lost_through_broker_outage_and_kill_9(
    mosquitto: Mosquitto, tmp_path: Path, unique: str
) -> None:
    gateway = f"gw-noloss-{unique}"
    farm = DeviceFarm()
    farm.start()
    config, log = tmp_path / "edge.toml", tmp_path / "edge.log"
    write_config(config, mosquitto.port, farm.port, gateway)
    sub = Subscriber(mosquitto.port, topics.telemetry(gateway), f"sub-{unique}")
    edge = start_edge(config, log)
    try:
        wait_for(lambda: len({r["device_id"] for r in sub.readings()}) == DEVICES, 30, "data")

        # 1. the broker goes away for a minute; the edge keeps polling into its spool
        mosquitto.stop()
        time.sleep(OUTAGE_S)
        assert edge.poll() is None, "edge died during the outage"
        mosquitto.start()
        in_outage = sum(len(v) for v in farm.served.values())
        wait_for(lambda: len(sub.readings()) >= in_outage - 2 * DEVICES, 60, "backlog drain")

        # 2. kill -9 the edge mid-stream, check the spool file, restart it
        time.sleep(1.3)
        edge.send_signal(signal.SIGKILL)
        edge.wait()
        killed_at = time.monotonic()
        must_arrive = spooled(tmp_path / "spool.db")
        time.sleep(2)
        edge = start_edge(config, log)
        time.sleep(5)

        # 3. graceful stop: SIGTERM flushes and exits 0
        farm.stop()
        edge.send_signal(signal.SIGTERM)
        assert edge.wait(30) == 0
        served = {u: list(v) for u, v in farm.served.items()}
        total = sum(len(v) for v in served.values())
        wait_for(lambda: len(sub.readings()) >= total - DEVICES, 30, "final delivery")
        time.sleep(1.0)
    finally:
        if edge.poll() is None:
            edge.kill()
            edge.wait()
        sub.close()

    readings = sub.readings()
    keys = [(r["device_id"], r["ts"]) for r in readings]
    dup = [k for k, n in collections.Counter(keys).items() if n > 1]
    assert not dup, f"readings delivered twice: {dup[:5]}"
    assert must_arrive <= set(keys), (
        f"spooled before kill -9 but lost: {len(must_arrive - set(keys))}"
    )

    seqs = sorted(b["seq"] for b in sub.batches)
    assert seqs == list(range(len(seqs))), "batch seq has gaps"

    gave_up = re.finditer(r"device_error device=(\S+) reason=timeout", log.read_text())
    timeouts = collections.Counter(m.group(1) for m in gave_up)
    per_device: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in readings:
        per_device[r["device_id"]].append(r)
    assert len(per_device) == DEVICES
    for u in range(1, DEVICES + 1):
        got = per_device[f"wb-{u:02d}"]
        ts = [r["ts"] for r in got]
        samples = [r["values"]["totaliser"] for r in got]
        assert ts == sorted(ts) and samples == sorted(samples), f"wb-{u:02d} out of order"
        missing = {n for _, n in served[u]} - set(samples)
        # only a read in flight when SIGKILL hit may be missing, and reads the edge gave up
        # on: the simulator answered after the 0.5 s poll timeout (a loaded machine), so
        # the edge never had the value and logged device_error for it
        late = {n for t, n in served[u] if n in missing and killed_at - 1.0 <= t <= killed_at}
        unread = missing - late
        assert len(late) <= 1 and len(unread) <= timeouts[f"wb-{u:02d}"], (
            f"wb-{u:02d} lost samples {sorted(missing)} "
            f"(poll timeouts logged: {timeouts[f'wb-{u:02d}']})"
        )
    assert len(readings) >= OUTAGE_S * DEVICES
    print(f"received={len(readings)} duplicate_batches={sub.duplicates} log={log}")
