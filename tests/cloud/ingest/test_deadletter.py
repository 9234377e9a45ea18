"""Bad payloads land in the dead letter with a reason; the worker stays up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.ingest import IngestSettings, IngestWorker
from cloud.metrics import Metrics
from cloud.registry import Registry
from cloud.store import open_store
from cloud.store.influx import InfluxStore
from schemas import DeadLetter, encode_batch, topics
from tests.cloud.ingest.helpers import Collector, Publisher, batch, count, recent, wait_until
from tests.servers import Influx, Mosquitto


class Rig:
    def __init__(self, mosquitto: Mosquitto, influx: Influx, db: str, unique: str) -> None:
        self.influx, self.db = influx, db
        self.store = open_store(f"influx+http://127.0.0.1:{influx.port}/{db}")
        assert isinstance(self.store, InfluxStore)
        self.store.init_db()
        self.metrics = Metrics()
        self.worker = IngestWorker(
            IngestSettings(broker_port=mosquitto.port, client_id=f"dl-{unique}", batch_time_s=0.02),
            self.store,
            Registry(first_seen=True),
            metrics=self.metrics,
        )
        self.dead = Collector(mosquitto.port, f"{topics.ROOT}/deadletter/#", f"dlc-{unique}")
        self.pub = Publisher(mosquitto.port, f"pub-{unique}")
        self.worker.start()
        assert self.worker.wait_ready()

    def send(self, payload: bytes, gateway: str = "gwbad") -> dict[str, Any]:
        """Publish one payload, return the dead-letter record it caused."""
        before = len(self.dead.messages)
        self.pub.publish(topics.telemetry(gateway), payload)
        wait_until(lambda: len(self.dead.messages) > before, timeout=20)
        topic, raw = self.dead.messages[before]
        assert topic == topics.deadletter(gateway)
        record = DeadLetter.model_validate_json(raw)
        assert record.payload_size == len(payload)
        return record.model_dump()

    def close(self) -> None:
        self.worker.stop()
        self.pub.close()
        self.dead.close()
        self.store.close()


@pytest.fixture
def rig(mosquitto: Mosquitto, influx: Influx, influx_db: str, unique: str) -> Iterator[Rig]:
    r = Rig(mosquitto, influx, influx_db, unique)
    yield r
    r.close()


T0 = recent()


def valid(seq: int = 0, gateway: str = "gwbad") -> dict[str, Any]:
    return json.loads(encode_batch(batch(gateway, seq, 3, T0)))


def with_reading(**change: Any) -> bytes:
    doc = valid()
    doc["readings"][1].update(change)
    return json.dumps(doc).encode()


def with_values(**change: Any) -> bytes:
    doc = valid()
    doc["readings"][1]["values"].update(change)
    return json.dumps(doc).encode()


FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")

HAND_MADE = [
    (with_values(flow="lots"), ["readings.1", "flow", "'lots'"]),
    (with_values(pressure=99.0), ["readings.1", "pressure", "99.0"]),
    (with_values(colour="red"), ["readings.1", "colour"]),
    (with_reading(kind="toaster"), ["readings.1", "toaster"]),
    (with_reading(device_id="has space"), ["readings.1", "device_id", "has space"]),
    (with_reading(ts=FUTURE), ["readings.1.ts", "ahead of the cloud clock"]),
    (with_reading(ts="2001-01-01T00:00:00Z"), ["readings.1.ts", "older than"]),
    (with_reading(ts="2026-01-01T00:00:00"), ["readings.1", "ts", "timezone"]),
    (json.dumps({**valid(), "seq": -1}).encode(), ["seq", "-1"]),
    # beyond a signed 64-bit counter: no BIGINT column or InfluxDB integer holds it
    (json.dumps({**valid(), "seq": 2**63}).encode(), ["seq", str(2**63)]),
    (json.dumps({**valid(), "gateway_id": "other"}).encode(), ["gateway_id", "other"]),
    (b"\xff\xfe\x00garbage", ["not UTF-8"]),
    (b"{not json", ["<root>", "json"]),
    (b"", ["<root>"]),
    (b"[]", ["<root>"]),
    (b"x" * (4 * 1024 * 1024 + 10), ["exceeds"]),
    (
        json.dumps({**valid(), "readings": [valid()["readings"][0]] * 10_001}).encode(),
        ["readings", "10000"],
    ),
]


def test_hand_made_bad_payloads(rig: Rig) -> None:
    for payload, expected in HAND_MADE:
        record = rig.send(payload)
        for part in expected:
            assert part.lower() in record["reason"].lower(), (part, record["reason"])
    assert rig.metrics.value("akita_ingest_dead_letters_total") == len(HAND_MADE)
    # the worker is still up and stores good data
    rig.pub.publish(topics.telemetry("gwbad"), json.dumps(valid(seq=7)).encode())
    wait_until(lambda: count(rig.influx, rig.db) == 5)
    # a bad reading costs only itself: readings 0 and 2 of the batches whose reading 1 was
    # bad (the same two points each time), and the last batch's three; reading 1 never
    dev1 = rig.influx.query(
        "SELECT count(flow) FROM water_block WHERE device = 'wb-gwbad-1'", rig.db
    )["results"][0]["series"][0]["values"][0][1]
    assert (count(rig.influx, rig.db), dev1) == (5, 1)


def test_duplicated_seq_with_other_content_is_refused(rig: Rig) -> None:
    first = valid(seq=5, gateway="gwdup")
    rig.pub.publish(topics.telemetry("gwdup"), json.dumps(first).encode())
    wait_until(lambda: count(rig.influx, rig.db) == 3)
    # a plain re-send is a harmless duplicate: counted, not dead-lettered
    rig.pub.publish(topics.telemetry("gwdup"), json.dumps(first).encode())
    wait_until(lambda: rig.metrics.value("akita_ingest_duplicates_total") == 1)
    other = json.loads(encode_batch(batch("gwdup", 5, 4, recent(5))))
    record = rig.send(json.dumps(other).encode(), gateway="gwdup")
    assert "seq: 5" in record["reason"] and "other content" in record["reason"]
    assert count(rig.influx, rig.db) == 3


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
containers = st.lists(json_values, max_size=3) | st.dictionaries(
    st.text(max_size=5), json_values, min_size=1, max_size=3
)
# for each part, values that can never be valid there (pydantic's lax mode accepts e.g.
# "1.5" for a float and 1700000000 for a datetime, so those are left out on purpose)
BREAKERS: dict[str, st.SearchStrategy[Any]] = {
    "gateway_id": json_values.filter(lambda v: v != "gwbad"),
    "seq": st.none()
    | st.text(alphabet="abc", min_size=1)
    | st.integers(max_value=-1)
    | st.integers(min_value=2**63)
    | containers,
    "sent_at": st.none() | st.booleans() | containers,
    "readings": st.none() | st.text(max_size=5) | st.dictionaries(st.text(max_size=3), json_values),
    "v": json_values.filter(lambda v: v != 1),
    "device_id": st.none()
    | st.integers()
    | containers
    | st.text(min_size=1).map(lambda t: t + " /"),
    "kind": json_values.filter(
        lambda v: v not in ("water_block", "manhole_pump", "flood_sensor", "vehicle", "call_unit")
    ),
    "ts": st.none() | st.booleans() | containers | st.text(alphabet="xyz", max_size=8),
    "values": st.none() | st.lists(json_values, max_size=3) | st.text(max_size=5) | st.integers(),
    "flow": containers | st.floats(min_value=1e13) | st.text(alphabet="xyz", min_size=1),
}


@st.composite
def broken_batches(draw: st.DrawFn) -> bytes:
    """A valid batch with one part replaced by a value that can never be valid there."""
    doc = valid(seq=draw(st.integers(0, 40)))
    where = draw(st.sampled_from([*BREAKERS, "bytes"]))
    if where == "bytes":
        return b"\xff" + draw(st.binary(max_size=200))  # never UTF-8
    value = draw(BREAKERS[where])
    if where in ("gateway_id", "seq", "sent_at", "readings", "v"):
        doc[where] = value
    elif where == "flow":
        doc["readings"][0]["values"]["flow"] = value
    else:
        doc["readings"][0][where] = value
    return json.dumps(doc).encode()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=broken_batches())
def test_generated_bad_payloads_are_dead_lettered(rig: Rig, payload: bytes) -> None:
    record = rig.send(payload)
    assert record["reason"]
    assert rig.worker.health().broker_connected
