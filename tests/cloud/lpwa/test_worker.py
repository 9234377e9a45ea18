"""Meter uplinks from the simulator through a real Mosquitto into a real InfluxDB:
every meter-hour stored once (3-gateway repeats, redeliveries, 6 h late uplinks), and
each kind of bad input dead-lettered or flagged with its reason."""

from __future__ import annotations

import base64
import json
import math
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import Field, ValidationError, field_validator

from cloud.errors import StoreError
from cloud.ingest.encode import Encoder
from cloud.lpwa import chirpstack
from cloud.lpwa.codecs import ALARM_BITS, decode_hourly_v1
from cloud.lpwa.handling import Handler, fields_ok, mirror_bounds
from cloud.lpwa.worker import LpwaSettings, LpwaWorker, ack_all, puback_packets
from cloud.registry import Registry
from cloud.store.influx import InfluxStore
from firmware_sim import meters as sim
from schemas import DeviceInfo, DeviceKind
from schemas.kinds import KINDS
from schemas.kinds.base import Values
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


# --- the handler's fast path against the reference (pydantic values + Encoder) ------------


def _up_payload(dev_eui: str, data: bytes, *, f_cnt: int = 0, rx: list[dict[str, Any]],
                dedup: str = "d-0", time_s: float | None = None) -> bytes:  # fmt: skip
    sent = datetime.fromtimestamp(time_s or time.time(), UTC)
    return json.dumps({
        "deduplicationId": dedup, "time": sent.isoformat(),
        "deviceInfo": {"devEui": dev_eui, "deviceProfileName": sim.PROFILE},
        "fCnt": f_cnt, "fPort": 10, "data": base64.b64encode(data).decode(), "rxInfo": rx,
    }).encode()  # fmt: skip


def _reference(registry: Registry, dev_eui: str, ns: str, data: bytes,
               rx: list[dict[str, Any]]) -> tuple[list[bytes], list[Any]]:  # fmt: skip
    """What the worker wrote before its fast path: a pydantic values model per hour and
    Encoder.reading_line."""
    hours = decode_hourly_v1(data)
    rssi = max((r["rssi"] for r in rx if r.get("rssi") is not None), default=None)
    snr = max((r["snr"] for r in rx if r.get("snr") is not None), default=None)
    encoder = Encoder(registry)
    model = KINDS["water_meter"].values
    out, models = [], []
    for i, h in enumerate(hours):
        fields: dict[str, Any] = {"index": h.index}
        if i == len(hours) - 1:
            fields.update(reverse_volume=h.reverse_volume, battery=h.battery,
                          rssi=None if rssi is None else float(rssi),
                          snr=None if snr is None else float(snr))  # fmt: skip
            assert h.alarms is not None
            fields.update(zip(ALARM_BITS, h.alarms, strict=True))
        models.append(model(**fields))
        out.append(encoder.reading_line(dev_eui, "water_meter", ns, models[-1], h.end_s * 1000))
    return [line.encode() for line in out], models


def test_fast_lines_are_the_encoders_bytes_for_random_uplinks() -> None:
    rng = random.Random(22)
    dev = "a1b2c3d4e5f60708"
    registry = Registry(None)
    registry.provision(NS, [DeviceInfo(device_id=dev, kind=DeviceKind("water_meter"),
                                       site="block 1, 秋田", district="north=1")])  # fmt: skip
    now_h = int(time.time()) // HOUR * HOUR
    fast, slow = Handler(registry, readings=False), Handler(registry, readings=True)

    def no_model(*_a: Any) -> Any:
        raise AssertionError("the fast path fell back to a values model per hour")

    fast._values = no_model  # type: ignore[method-assign]
    for k in range(2000):
        n = rng.randint(1, 12)
        first_end = now_h - rng.randint(n, 24 * 80) * HOUR
        index_l = rng.choice([0, 1, 999, 1000, rng.randrange(0, 2**32 - 12 * 65535)])
        used = [rng.choice([0, 1, rng.randrange(0, 65536)]) for _ in range(n - 1)]
        reverse_l = rng.choice([0, 7, rng.randrange(0, 100_000_001)])
        data = sim.encode_hourly_v1(first_end, index_l, used, reverse_l,
                                    rng.randint(0, 100), rng.randrange(0, 32))  # fmt: skip
        rx: list[dict[str, Any]] = [
            {"rssi": rng.choice([-160, 20, rng.randint(-160, 20), rng.uniform(-160, 20)]),
             "snr": rng.choice([-40, 40, round(rng.uniform(-40, 40), rng.randint(0, 3))])}
            for _ in range(rng.randint(0, 3))
        ]  # fmt: skip
        if rx and rng.random() < 0.2:
            rx[0] = {"gatewayId": "no radio figures"}
        payload = _up_payload(dev, data, f_cnt=k, rx=rx, dedup=f"d-{k}")
        topic = sim_topic(dev)
        want, models = _reference(registry, dev, NS, data, rx)
        got = fast.handle(topic, payload)
        assert got.dead is None and got.lines == want and got.readings == []
        both = slow.handle(topic, payload)
        assert both.lines == want
        hours = decode_hourly_v1(data)
        assert [(r[0], r[1], r[2].timestamp(), r[3]) for r in both.readings] == [
            (dev, "water_meter", h.end_s, m) for h, m in zip(hours, models, strict=True)
        ]
        assert fast.handle(topic, payload).verdict == "duplicate"


def sim_topic(dev_eui: str, ns: str = NS) -> str:
    return chirpstack.topic(ns, sim.APPLICATION_ID, dev_eui)


def test_fast_check_accepts_only_what_the_values_model_accepts_unchanged() -> None:
    """fields_ok is a filter: what it accepts, the model accepts and keeps as given;
    what the model refuses, it refuses (then the model's error names the field)."""
    model = KINDS["water_meter"].values
    bounds = mirror_bounds(model)
    assert bounds is not None and set(bounds) == set(model.model_fields)
    rng = random.Random(7)
    specials = [0.0, -0.0, 1e7, 1e7 + 1e-9, -1e-12, 100.0, 100.5, -160.0, 20.0, 40.0,
                math.nan, math.inf, -math.inf, 5, True, False, None, "5", 1e300]  # fmt: skip
    accepted = refused = 0
    for _ in range(20_000):
        fields: dict[str, Any] = {}
        for name in rng.sample(sorted(bounds), rng.randint(1, len(bounds))):
            typ, lo, hi = bounds[name]
            if typ is bool:
                fields[name] = rng.choice([True, False, None, 1, 0, "yes"])
            else:
                span = max(hi - lo, 1.0) if math.isfinite(hi - lo) else 1e6
                fields[name] = rng.choice([*specials, rng.uniform(lo - span / 10, hi + span / 10)])
        if rng.random() < 0.02:
            fields["volume"] = 1.0  # not a field of the kind
        try:
            values = model(**fields)
        except ValidationError:
            assert not fields_ok(bounds, fields), fields
            refused += 1
            continue
        if fields_ok(bounds, fields):
            accepted += 1
            for name, v in fields.items():
                got = getattr(values, name)
                assert type(got) is type(v) and (got == v or (v != v and got != got)), name
    assert accepted > 1000 and refused > 1000


def test_a_kind_the_check_cannot_mirror_takes_the_model_path() -> None:
    class WithValidator(Values):
        level: float | None = Field(default=None, ge=0, le=5)

        @field_validator("level")
        @classmethod
        def _round(cls, v: float | None) -> float | None:
            return v

    class WithInt(Values):
        count: int | None = Field(default=None, ge=0)

    class WithGt(Values):
        level: float | None = Field(default=None, gt=0)

    assert mirror_bounds(WithValidator) is None
    assert mirror_bounds(WithInt) is None
    assert mirror_bounds(WithGt) is None


@pytest.mark.parametrize(
    ("rx", "reverse_l", "says"),
    [
        ([{"rssi": 50, "snr": 1.0}], 0,
         "water_meter.rssi: 50.0: Input should be less than or equal to 20"),
        ([{"rssi": -100, "snr": -45.5}], 0,
         "water_meter.snr: -45.5: Input should be greater than or equal to -40"),
        ([{"rssi": -100, "snr": 1.0}], 100_000_001,
         "water_meter.reverse_volume: 100000.001: Input should be less than or equal to 100000"),
    ],
)  # fmt: skip
def test_a_value_out_of_its_kinds_bounds_is_dead_lettered_naming_field_and_value(
    rx: list[dict[str, Any]], reverse_l: int, says: str
) -> None:
    dev = "a1b2c3d4e5f60708"
    registry = Registry(None)
    registry.provision(NS, [DeviceInfo(device_id=dev, kind=DeviceKind("water_meter"))])
    handler = Handler(registry, readings=False)
    first_end = (int(time.time()) // HOUR - 6) * HOUR
    data = sim.encode_hourly_v1(first_end, 1000, [1, 2, 3, 4, 5], reverse_l, 80, 0)
    out = handler.handle(sim_topic(dev), _up_payload(dev, data, rx=rx))
    assert out.verdict == "dead" and not out.lines
    assert out.dead is not None and out.dead.startswith(says), out.dead
    assert f"(devEui {dev}, profile 'akita-hourly-v1')" in out.dead
    assert len(handler.dedupe) == 0  # refused before dedupe: a fixed repeat is not "seen"


def test_a_move_or_new_tags_reach_the_cached_line_prefix() -> None:
    dev = "a1b2c3d4e5f60708"
    meter = DeviceKind("water_meter")
    registry = Registry(None)
    registry.provision(NS, [DeviceInfo(device_id=dev, kind=meter, district="north"),
                            DeviceInfo(device_id="a1b2c3d4e5f60709", kind=meter)])  # fmt: skip
    handler = Handler(registry, readings=False)
    first_end = (int(time.time()) // HOUR - 6) * HOUR
    rx = [{"rssi": -100, "snr": 1.0}]

    def send(ns: str, k: int) -> Any:
        data = sim.encode_hourly_v1(first_end - k * 6 * HOUR, 1000, [1] * 5, 0, 80, 0)
        return handler.handle(sim_topic(dev, ns), _up_payload(dev, data, rx=rx, f_cnt=k,
                                                              dedup=f"m-{k}"))  # fmt: skip

    assert b"district=north" in send(NS, 0).lines[0]
    registry.provision(NS, [DeviceInfo(device_id=dev, kind=meter, district="south")])
    assert b"district=south" in send(NS, 1).lines[0]
    registry.provision("ns-other", [DeviceInfo(device_id=dev, kind=meter, district="south")])
    assert (send(NS, 2).dead or "").startswith(f"not_owner: devEui {dev} is registered to")
    moved = send("ns-other", 3)
    assert moved.dead is None and b"gateway=ns-other" in moved.lines[0]


# --- acknowledgements ------------------------------------------------------------------


def test_batched_acks_are_the_bytes_paho_writes_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)
    queued: list[tuple[int, bytes]] = []

    def capture(command: int, packet: bytes, mid: int, qos: int, info: Any = None) -> Any:
        queued.append((command, bytes(packet)))
        return mqtt.MQTT_ERR_SUCCESS

    monkeypatch.setattr(client, "_packet_queue", capture)
    mids = [1, 2, 255, 256, 4096, 65535, 7, 7]
    for mid in mids:
        client.ack(mid, 1)
    one_by_one = b"".join(packet for _, packet in queued)
    assert {command for command, _ in queued} == {mqtt.PUBACK}
    assert puback_packets(mids) == one_by_one
    queued.clear()
    ack_all(client, mids)
    assert queued == [(mqtt.PUBACK, one_by_one)]
    queued.clear()
    ack_all(client, [])
    assert queued == []


def test_every_message_is_acknowledged_once_written(
    mosquitto: Mosquitto, influx_store: InfluxStore, publisher: _Publisher
) -> None:
    """A new worker on the same persistent session gets nothing again: the broker had
    every acknowledgement (else it redelivers unacknowledged messages first)."""
    start = _start_s(1)
    fleet = sim.fleet(20, 2, seed=5, start_s=start, days=1, dead=0)
    events = sim.all_events(fleet, NS, start, 1, seed=5, triple=0.2)
    registry = _registry(fleet)
    worker = _worker(mosquitto, influx_store, registry)
    try:
        for e in events:
            publisher.publish(e.topic, e.payload)
        wait_for("every event handled", lambda: _handled(worker) == len(events), 60)
        wait_for("written and acknowledged", lambda: not worker._lines and not worker._acks, 10)
    finally:
        worker.stop()
    again = _worker(mosquitto, influx_store, registry)
    try:
        late = sim.all_events(fleet[:1], NS, start + HOUR * 6, 0.5, seed=6)[0]
        publisher.publish(late.topic, late.payload)
        wait_for("the new message handled", lambda: _handled(again) >= 1, 20)
        wait_for("written", lambda: not again._lines and not again._acks, 10)
    finally:
        again.stop()
    assert _handled(again) == 1, again.counts


class _FailingStore:
    """The real store behind a switch: while ``down``, every write fails as a store
    that is down does (retryable StoreError)."""

    def __init__(self, store: InfluxStore) -> None:
        self.store, self.down, self.failed = store, True, 0

    def write_lines(self, body: bytes) -> None:
        if self.down:
            self.failed += 1
            raise StoreError("influxdb /write: connection refused", retryable=True)
        self.store.write_lines(body)


def test_nothing_is_acknowledged_while_the_store_is_down(
    mosquitto: Mosquitto, influx: Influx, influx_store: InfluxStore, influx_db: str,
    publisher: _Publisher,
) -> None:  # fmt: skip
    """A worker stopped while its writes fail leaves every message unacknowledged: the
    next one on the session gets them again and stores them; a write that failed is
    retried with what came meanwhile."""
    start = _start_s(1)
    fleet = sim.fleet(10, 1, seed=9, start_s=start, days=1, dead=0)
    events = sim.all_events(fleet, NS, start, 1, seed=9)
    registry = _registry(fleet)
    store = _FailingStore(influx_store)
    worker = _worker(mosquitto, store, registry)  # type: ignore[arg-type]
    try:
        for e in events[:20]:
            publisher.publish(e.topic, e.payload)
        wait_for("handled", lambda: _handled(worker) == 20, 20)
        wait_for("a write failed", lambda: store.failed >= 1, 10)
    finally:
        worker.stop()
    assert worker._acks and "lines" not in worker.counts
    assert _count(influx, influx_db) == 0
    again = _worker(mosquitto, store, registry)  # type: ignore[arg-type]
    try:
        wait_for("redelivered", lambda: _handled(again) >= 20, 20)
        failed = store.failed
        wait_for("retried", lambda: store.failed > failed, 10)
        for e in events[20:]:
            publisher.publish(e.topic, e.payload)
        wait_for("all handled", lambda: _handled(again) == len(events), 30)
        store.down = False
        wait_for("written", lambda: not again._lines and not again._acks, 20)
    finally:
        again.stop()
    assert again.counts["new"] == len(events) and again.counts["lines"] == len(events) * 6
    assert _count(influx, influx_db) == len(events) * 6


def _publish_packet(topic: bytes, mid: int, payload: bytes, props: bytes = b"",
                    qos: int = 1) -> tuple[int, bytearray]:  # fmt: skip
    """(fixed header byte, variable header + payload) of an MQTT 5 PUBLISH."""
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += mid.to_bytes(2, "big")
    n, varint = len(props), b""
    while True:
        byte, n = n & 0x7F, n >> 7
        varint += bytes([byte | (0x80 if n else 0)])
        if not n:
            break
    return 0x30 | qos << 1, bytearray(body + varint + props + payload)


def test_the_lean_publish_path_gives_what_paho_gives() -> None:
    """_LeanClient takes topic, payload and packet id from the packet paho has read;
    every packet gives the worker the same (topic, payload, mid) as paho's own path,
    and what the lean path does not handle (properties, QoS 0) still arrives."""
    from cloud.lpwa.worker import Received, _LeanClient

    def received(lean: bool, header: int, packet: bytearray) -> tuple[list[Received], int]:
        """What arrives, and how much of it through the lean path."""
        got: list[Received] = []
        fast: list[Received] = []
        cls = _LeanClient if lean else mqtt.Client
        client = cls(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)
        client.on_message = lambda _c, _u, m: got.append(Received(m.topic, bytes(m.payload),
                                                                  m.mid))  # fmt: skip
        if lean:
            client.deliver = fast.append  # type: ignore[attr-defined]
        client._in_packet = {**client._in_packet, "command": header, "packet": bytearray(packet)}
        assert client._handle_publish() == mqtt.MQTT_ERR_SUCCESS
        return got + fast, len(fast)

    rng = random.Random(5)
    expiry = bytes([0x02]) + (3600).to_bytes(4, "big")  # message expiry interval
    user = bytes([0x26, 0, 1]) + b"k" + bytes([0, 2]) + b"v1"  # user property k=v1
    cases = []
    for k in range(300):
        topic = sim_topic(f"{rng.getrandbits(64):016x}").encode()
        if k % 7 == 0:
            topic = "lpwa/ns-秋田/x".encode() + bytes(rng.randrange(0, 200))
        payload = rng.randbytes(rng.choice([0, 1, 27, 700, 5000]))
        props = rng.choice([b"", b"", expiry, user, expiry + user])
        qos = rng.choice([1, 1, 1, 0])
        lean = not props and qos == 1
        cases.append((*_publish_packet(topic, rng.randint(1, 65535), payload, props, qos), lean))
    assert 50 < sum(lean for *_, lean in cases) < 250
    for header, packet, lean in cases:
        stock, _ = received(False, header, packet)
        assert len(stock) == 1
        assert received(True, header, packet) == (stock, 1 if lean else 0)


def test_provisioning_by_another_process_reaches_a_running_worker(
    mosquitto: Mosquitto, influx: Influx, influx_store: InfluxStore, influx_db: str,
    publisher: _Publisher, tmp_path: Path,
) -> None:  # fmt: skip
    """A meter added, and one moved to another network server, through another process's
    registry (akita cloud device add): the running worker takes both without a restart."""
    from cloud.db.base import create_all, make_engine, make_sessionmaker

    engine = make_engine(f"sqlite:///{tmp_path}/akita.db")
    create_all(engine)
    start = _start_s(1)
    fleet = sim.fleet(3, 1, seed=4, start_s=start, days=1, leaks=0, heavy=0, dead=0)
    meter = DeviceKind("water_meter")
    mine = Registry(make_sessionmaker(engine))
    mine.provision(NS, [DeviceInfo(device_id=m.dev_eui, kind=meter) for m in fleet[:2]])
    worker = _worker(mosquitto, influx_store, mine)
    added, moved = fleet[2], fleet[1]
    try:
        other = Registry(make_sessionmaker(engine))  # the CLI's, in another process
        other.provision(NS, [DeviceInfo(device_id=added.dev_eui, kind=meter)])
        other.provision("ns-b", [DeviceInfo(device_id=moved.dev_eui, kind=meter)])
        wait_for("reloaded", lambda: added.dev_eui in mine.owned(NS), 20)
        up_added = next(iter(sim.uplinks(added, NS, start, 1, seed=4)))
        up_moved = next(iter(sim.uplinks(moved, NS, start, 1, seed=4)))
        publisher.publish(up_added.topic, up_added.payload)
        publisher.publish(up_moved.topic, up_moved.payload)  # from its former owner
        publisher.publish(up_moved.topic.replace(f"lpwa/{NS}/", "lpwa/ns-b/"), up_moved.payload)
        wait_for("handled", lambda: _handled(worker) == 3, 20)
        wait_for("written", lambda: not worker._lines and not worker._acks, 10)
        wait_for("the dead letter", lambda: len(publisher.reasons()) == 1, 10)
    finally:
        worker.stop()
    assert worker.counts == {"new": 2, "dead": 1, "lines": 12}
    (reason,) = publisher.reasons()
    assert reason.startswith(f"not_owner: devEui {moved.dev_eui} is registered to network "
                             "server 'ns-b'")  # fmt: skip
    assert _count(influx, influx_db, f"WHERE device = '{added.dev_eui}'") == 6
    assert _count(influx, influx_db, f"WHERE device = '{moved.dev_eui}' AND gateway = 'ns-b'") == 6
