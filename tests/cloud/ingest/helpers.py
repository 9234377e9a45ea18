"""Shared helpers for the ingest tests: batches, a publisher, polling InfluxDB."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from schemas import Batch, encode_batch, reading_adapter, topics
from tests.servers import Influx


def batch(gateway: str, seq: int, n: int, t0: datetime, *, device_prefix: str = "wb") -> Batch:
    """``n`` water-block readings, one per device, 1 ms apart, all distinct."""
    readings = [
        reading_adapter.validate_python(
            {
                "device_id": f"{device_prefix}-{gateway}-{i % 50}",
                "kind": "water_block",
                "ts": t0 + timedelta(milliseconds=seq * 1000 + i),
                "values": {"flow": float(seq * n + i), "pressure": 0.3},
            }
        )
        for i in range(n)
    ]
    return Batch(gateway_id=gateway, seq=seq, sent_at=t0, readings=readings)


def recent(minutes: float = 10) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes)


class Publisher:
    """A QoS 1 MQTT publisher that waits for every PUBACK."""

    def __init__(self, port: int, client_id: str, **auth: Any) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if auth:
            self.client.username_pw_set(auth["username"], auth.get("password"))
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int = 1) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            info.wait_for_publish(timeout=30)

    def publish_batches(self, batches: list[Batch]) -> None:
        infos = [
            self.client.publish(topics.telemetry(b.gateway_id), encode_batch(b), qos=1)
            for b in batches
        ]
        for info in infos:
            info.wait_for_publish(timeout=60)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Collector:
    """Subscribes to a filter and keeps (topic, payload) pairs."""

    def __init__(self, port: int, topic_filter: str, client_id: str, **auth: Any) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if auth:
            self.client.username_pw_set(auth["username"], auth.get("password"))
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic_filter, qos=1)
        self.client.loop_start()
        assert self._subscribed.wait(10)

    def json(self) -> list[dict[str, Any]]:
        return [json.loads(p) for _, p in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2) -> Any:
    """Poll until ``check()`` is truthy; return its value (fail with the last one)."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = check()
    assert value, f"condition not met within {timeout}s (last value {value!r})"
    return value


def count(influx: Influx, db: str, measurement: str = "water_block", field: str = "flow") -> int:
    """Number of points (exactly-once check: no series or time is doubled)."""
    result = influx.query(f'SELECT count("{field}") FROM "{measurement}"', db)["results"][0]
    series = result.get("series")
    return int(series[0]["values"][0][1]) if series else 0


def flows(influx: Influx, db: str) -> list[float]:
    result = influx.query('SELECT "flow" FROM "water_block"', db)["results"][0]
    return sorted(v[1] for s in result.get("series", []) for v in s["values"])


def start_group(
    port: int,
    group: str,
    store: Callable[[int], Any],
    registry: Callable[[int], Any] | None = None,
    *,
    n: int = 2,
    **settings: Any,
) -> list[Any]:
    """``n`` started ingest workers on one shared-subscription group (client ids
    ``<group>-0``...), each with ``store(i)`` and ``registry(i)`` (default: its own)."""
    from cloud.ingest.settings import IngestSettings
    from cloud.ingest.worker import IngestWorker
    from cloud.metrics import Metrics
    from cloud.registry import Registry

    workers = [
        IngestWorker(
            IngestSettings(
                broker_port=port,
                client_id=f"{group}-{i}",
                group=group,
                **{"batch_time_s": 0.05, **settings},
            ),
            store(i),
            registry(i) if registry is not None else Registry(first_seen=True),
            metrics=Metrics(),
        )
        for i in range(n)
    ]
    for w in workers:
        w.start()
    return workers
