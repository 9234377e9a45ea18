"""Meter uplinks from the simulator through a real Mosquitto into a real InfluxDB:
every meter-hour stored once (3-gateway repeats, redeliveries, 6 h late uplinks), and
each kind of bad input dead-lettered or flagged with its reason."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud.lpwa.worker import LpwaSettings, LpwaWorker
from cloud.registry import Registry
from cloud.store.influx import InfluxStore
from firmware_sim import meters as sim
from schemas import DeviceInfo, DeviceKind
from tests.servers import Influx, Mosquitto, wait_for

NS = "ns-akita"
HOUR = 3600


def _start_s(days: float) -> int:
    return (int(time.time()) // HOUR - int(days * 24) - 1) * HOUR


def _registry(fleet: list[sim.Meter], ns: str = NS) -> Registry:
    registry = Registry(None)
    meter = DeviceKind("water_meter")
    infos = [DeviceInfo(device_id=m.dev_eui, kind=meter, site=f"block-{m.block}") for m in fleet]
    registry.provision(ns, infos)
    return registry


class _Publisher:
    """The network server's side: QoS 1 publishes, and the dead letters it can read."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="chirpstack-test")
        self.dead: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self.client.on_message = self._on_dead
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("akita/v1/deadletter/#", qos=1)
        self.client.loop_start()

    def _on_dead(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.dead.append(json.loads(msg.payload))

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def reasons(self) -> list[str]:
        with self._lock:
            return [d["reason"] for d in self.dead]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[_Publisher]:
    p = _Publisher(mosquitto.port)
    yield p
    p.close()


def _worker(mosquitto: Mosquitto, store: InfluxStore, registry: Registry) -> LpwaWorker:
    worker = LpwaWorker(
        LpwaSettings(broker_port=mosquitto.port, batch_time_s=0.05), store, registry
    )
    worker.start()
    assert worker.wait_ready()
    return worker


def _handled(worker: LpwaWorker) -> int:
    return sum(v for k, v in worker.counts.items() if k != "lines")


def _count(influx: Influx, db: str, where: str = "") -> int:
    res = influx.query(f'SELECT count("index") FROM "water_meter" {where}', db)
    series = res["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def test_every_meter_hour_is_stored_once(mosquitto: Mosquitto, influx: Influx,
                                         influx_store: InfluxStore, influx_db: str,
                                         publisher: _Publisher) -> None:  # fmt: skip
    start = _start_s(2)
    fleet = sim.fleet(60, 3, seed=7, start_s=start, days=2, dead=0.1)
    events = sim.all_events(fleet, NS, start, 2, seed=7, triple=0.2, redeliver=0.1, late=0.1)
    worker = _worker(mosquitto, influx_store, _registry(fleet))
    try:
        for e in events:
            publisher.publish(e.topic, e.payload)
        wait_for("every event handled", lambda: _handled(worker) == len(events), 60)
        wait_for("written", lambda: not worker._lines and not worker._acks, 10)
    finally:
        worker.stop()
    # what the meters sent, once: the distinct (meter, hour) pairs in the unique frames
    frames = {(json.loads(e.payload)["deviceInfo"]["devEui"], json.loads(e.payload)["fCnt"])
              for e in events}  # fmt: skip
    expected = len(frames) * 6
    assert worker.counts["duplicate"] == len(events) - len(frames) > 0
    assert worker.counts["new"] == len(frames)
    assert worker.counts["lines"] == expected
    assert _count(influx, influx_db) == expected
    assert publisher.reasons() == []
    # the dead meters went silent, the others sent all 2 days
    dead = next(m for m in fleet if m.label == "dead")
    alive = next(m for m in fleet if m.label == "normal")
    assert _count(influx, influx_db, f"WHERE device = '{alive.dev_eui}'") == 48
    assert _count(influx, influx_db, f"WHERE device = '{dead.dev_eui}'") < 48


def test_bad_input_is_dead_lettered_or_flagged_with_its_reason(
    mosquitto: Mosquitto, influx: Influx, influx_store: InfluxStore, influx_db: str,
    publisher: _Publisher,
) -> None:  # fmt: skip
    start = _start_s(2)
    fleet = sim.fleet(2, 1, seed=3, start_s=start, days=2, leaks=0, heavy=0, dead=0)
    registry = _registry(fleet[:1])
    registry.provision(
        "ns-other", [DeviceInfo(device_id="a1ffffffffffffff", kind=DeviceKind("water_meter"))]
    )
    worker = _worker(mosquitto, influx_store, registry)
    good = list(sim.uplinks(fleet[0], NS, start, 2, seed=3))
    up = json.loads(good[0].payload)
    try:
        # unregistered devEui
        publisher.publish(sim.all_events(fleet[1:], NS, start, 1, 3)[0].topic,
                          sim.all_events(fleet[1:], NS, start, 1, 3)[0].payload)  # fmt: skip
        # a payload the codec cannot decode
        publisher.publish(good[0].topic, json.dumps({**up, "data": "AgAAAAAB"}).encode())
        # on another network server's prefix: it does not own this meter
        publisher.publish(good[0].topic.replace(f"lpwa/{NS}/", "lpwa/ns-other/"), good[0].payload)
        # a prefix nobody registered
        publisher.publish(good[0].topic.replace(f"lpwa/{NS}/", "lpwa/ns-rogue/"), good[0].payload)
        # frames 0-3, then a new frame (other data) under fCnt 1, received later, without
        # a join: a meter reset or a replay; stored and flagged
        for e in good[:4]:
            publisher.publish(e.topic, e.payload)
        later = json.loads(good[4].payload)
        back = {**later, "fCnt": 1, "deduplicationId": "after-reset"}
        publisher.publish(good[4].topic, json.dumps(back).encode())
        # after a join, a low counter is normal again
        join = {"deviceInfo": up["deviceInfo"], "time": up["time"]}
        publisher.publish(
            good[0].topic.replace("/event/up", "/event/join"), json.dumps(join).encode()
        )
        again = {**json.loads(good[0].payload), "deduplicationId": "after-join"}
        publisher.publish(good[0].topic, json.dumps(again).encode())
        wait_for("dead letters", lambda: len(publisher.reasons()) >= 5, 20)
        wait_for("all handled", lambda: _handled(worker) == 11, 20)
    finally:
        worker.stop()
    reasons = publisher.reasons()
    assert len(reasons) == 5, reasons
    assert f"unknown_device: devEui {fleet[1].dev_eui} is not registered" in reasons[0]
    assert "payload: 6 bytes, akita-hourly-v1 needs at least 16" in reasons[1]
    assert (
        f"not_owner: devEui {fleet[0].dev_eui} is registered to network server 'ns-akita'"
        in reasons[2]
    )
    assert "unknown_network_server: prefix lpwa/ns-rogue/" in reasons[3]
    assert reasons[4].startswith("flagged (stored): counter_back: fCnt 1")
    assert worker.counts["counter_back"] == 1 and worker.counts["join"] == 1
    # frames 0-3 and the reset meter's frame: 5 x 6 meter-hours (the frame after the
    # join repeats frame 0's hours and rewrites the same points)
    wait_for("stored", lambda: _count(influx, influx_db) == 30, 10)
