"""The detector tier's parts without MQTT: partitions and rendezvous assignment, leases
with fencing, checkpoints, idempotent detections and the per-gateway seq order. The
relational parts run on SQLite and on PostgreSQL (``db_url``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.manager import AlertManager
from cloud.db.base import create_all, make_engine, make_sessionmaker
from cloud.detect import checkpoint, handoff, lease, marks
from cloud.detect.base import Detection
from cloud.detect.engine import DetectorEngine
from cloud.detect.partitions import assign, owner, partition_of
from cloud.detect.tier import Item, SeqOrder
from schemas import Batch
from schemas.alert import Severity
from tests.cloud.detect.helpers import at, reading

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


@pytest.fixture
def sm(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    create_all(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


def test_partition_of_is_stable_and_spreads_devices() -> None:
    assert partition_of("fs-araya-underpass", 64) == 21  # crc32 (IEEE): the same on every host
    counts = [0] * 8
    for i in range(8000):
        counts[partition_of(f"wb-{i:05d}", 8)] += 1
    assert min(counts) > 850 and max(counts) < 1150
    assert {partition_of(f"d{i}", 1) for i in range(100)} == {0}


def test_rendezvous_moves_about_one_nth_when_an_instance_joins_or_leaves() -> None:
    members = [f"detect-{i}" for i in range(4)]
    before = {p: owner(p, members) for p in range(64)}
    counts = {m: len(ps) for m, ps in assign(64, members).items()}
    assert sum(counts.values()) == 64 and min(counts.values()) >= 8
    after = {p: owner(p, [*members, "detect-4"]) for p in range(64)}
    moved = [p for p in range(64) if before[p] != after[p]]
    assert all(after[p] == "detect-4" for p in moved)  # only to the newcomer
    assert 6 <= len(moved) <= 20  # about 64 / 5
    gone = {p: owner(p, members[1:]) for p in range(64)}
    moved = [p for p in range(64) if before[p] != gone[p]]
    assert sorted(moved) == sorted(p for p in range(64) if before[p] == "detect-0")
    assert assign(3, []) == {}


def test_one_owner_per_partition_and_a_fenced_former_owner_writes_nothing(
    sm: sessionmaker[Session],
) -> None:
    a = lease.acquire(sm, 0, "a", NOW, 10)
    assert a is not None and a.fence == 1
    assert lease.acquire(sm, 0, "b", NOW + timedelta(seconds=5), 10) is None  # a holds it
    assert lease.renew(sm, a, NOW + timedelta(seconds=5), 10)
    assert lease.acquire(sm, 0, "b", NOW + timedelta(seconds=14), 10) is None  # renewed
    later = NOW + timedelta(seconds=16)  # a stopped renewing (kill -9)
    b = lease.acquire(sm, 0, "b", later, 10)
    assert b is not None and b.fence == 2
    assert not lease.renew(sm, a, later, 10)  # a wakes up: its lease is gone
    assert not checkpoint.save(sm, a, {"x": 1}, event_time=None, now=later)
    assert checkpoint.save(sm, b, {"x": 2}, event_time=at(5), now=later)
    saved = checkpoint.load(sm, 0)
    assert saved is not None and saved.state == {"x": 2} and saved.fence == 2
    assert saved.event_time == at(5)
    assert lease.holders(sm, later) == {0: "b"}
    lease.release(sm, b, later)
    assert lease.holders(sm, later) == {}
    c = lease.acquire(sm, 0, "a", later, 10)
    assert c is not None and c.fence == 3


def test_members_are_live_while_they_heartbeat(sm: sessionmaker[Session]) -> None:
    lease.heartbeat(sm, "a", NOW)
    lease.heartbeat(sm, "b", NOW + timedelta(seconds=8))
    assert lease.live_members(sm, NOW + timedelta(seconds=9), 10) == ["a", "b"]
    assert lease.live_members(sm, NOW + timedelta(seconds=11), 10) == ["b"]
    lease.leave(sm, "b")
    assert lease.live_members(sm, NOW + timedelta(seconds=11), 10) == []


def test_a_checkpoint_carries_a_learnt_baseline_to_another_engine(
    sm: sessionmaker[Session],
) -> None:
    first = DetectorEngine()
    for i in range(20):  # a flood sensor rising into its first stage
        first.feed([reading("flood_sensor", "fs-1", 60 * i, depth=2.0 * i)], {})
    held = lease.acquire(sm, 3, "a", NOW, 10)
    assert held is not None
    assert checkpoint.save(sm, held, first.state(), event_time=at(1140), now=NOW)
    second = DetectorEngine()
    saved = checkpoint.load(sm, 3)
    assert saved is not None
    second.restore(saved.state)
    # the same next reading gives the same verdicts on both: the stage is not relearnt
    nxt = [reading("flood_sensor", "fs-1", 1200, depth=40.0)]
    a, b = first.feed(nxt, {}), second.feed(nxt, {})
    assert [(d.kind, d.active, d.extra.get("stage")) for d in a] == [
        (d.kind, d.active, d.extra.get("stage")) for d in b
    ]
    assert second.readings == first.readings


def _det(seconds: float, stage: str, severity: Severity = Severity.MODERATE) -> Detection:
    return Detection(
        detector="flood",
        kind="flood_stage",
        device_id="fs-1",
        ts=at(seconds),
        active=True,
        severity=severity,
        extra={"stage": stage},
    )


def test_a_redelivered_detection_opens_no_second_alert_and_notifies_nothing(
    sm: sessionmaker[Session],
) -> None:
    manager = AlertManager(sm)
    changes = []
    manager.subscribe(changes.append)
    first = [_det(60, "caution"), _det(120, "warning", Severity.SEVERE)]
    new = marks.fresh(sm, first)
    for d in new:
        manager.handle([d], d.ts)
    assert marks.remember(sm, None, new, NOW)
    assert [c.action for c in changes] == ["open", "update"]
    # a standby restored from an older checkpoint makes both again, then one more
    replay = [*first, _det(180, "danger", Severity.EXTREME)]
    new = marks.fresh(sm, replay)
    assert [d.extra["stage"] for d in new] == ["danger"]
    for d in new:
        manager.handle([d], d.ts)
    assert [c.action for c in changes] == ["open", "update", "update"]
    [alert] = manager.active()
    assert alert.started_at == at(60)  # the reading's time, not the processing time


def _item(gw: str, seq: int, *, reset: bool = False) -> Item:
    batch = Batch(gateway_id=gw, seq=seq, sent_at=at(seq), readings=[])
    return Item(handoff.Handoff(batch, reset, 0.0))


def test_seq_order_puts_several_workers_batches_back_in_order_once() -> None:
    order = SeqOrder(reorder_s=2.0)
    seqs = lambda items: [i.handoff.batch.seq for i in items]  # noqa: E731
    assert seqs(order.offer(_item("g", 10), 0.0)) == [10]  # the first one starts it
    assert seqs(order.offer(_item("g", 12), 0.1)) == []  # 11 is on another worker
    assert seqs(order.offer(_item("g", 13), 0.2)) == []
    assert seqs(order.offer(_item("g", 11), 0.3)) == [11, 12, 13]
    repeat = _item("g", 12)
    assert order.offer(repeat, 0.4) == [] and repeat.done  # a re-send: dropped
    assert seqs(order.offer(_item("g", 15), 0.5)) == []  # 14 never comes
    assert order.due(1.0) == []
    assert seqs(order.due(2.6)) == [15]  # waited reorder_s: go on without it
    assert seqs(order.offer(_item("g", 14), 2.7)) == [14]  # after all: late, not lost
    assert order.offer(_item("g", 14), 2.8) == []  # and once
    assert seqs(order.offer(_item("g", 0, reset=True), 3.0)) == [0]  # a documented reset
    assert order.applied() == {"g": 0}
    restored = SeqOrder(2.0)
    restored.restore({"g": (7, [5, 7])})
    assert restored.offer(_item("g", 7), 0.0) == []  # in the checkpoint already
    assert seqs(restored.offer(_item("g", 6), 0.0)) == [6]  # skipped before: applied late
    assert seqs(restored.offer(_item("g", 8), 0.0)) == [8]


def test_seq_order_keeps_a_gateways_first_batches_that_raced_through_two_workers() -> None:
    order = SeqOrder(reorder_s=2.0)
    assert [i.handoff.batch.seq for i in order.offer(_item("g", 1), 0.0)] == [1]
    assert [i.handoff.batch.seq for i in order.offer(_item("g", 0), 0.1)] == [0]
    assert order.offer(_item("g", 0), 0.2) == [] and order.offer(_item("g", 1), 0.2) == []


def test_handoff_payload_round_trip_and_a_bad_one_names_the_field() -> None:
    r = reading("flood_sensor", "fs-1", 0, depth=3.0)
    batch = Batch(gateway_id="gw-1", seq=4, sent_at=at(0), readings=[r])
    parts = handoff.split(batch, 8, {"fs-1": "flood_sensor", "fs-2": "flood_sensor"})
    assert parts[partition_of("fs-1", 8)] == [r]
    assert parts[partition_of("fs-2", 8)] == []  # every partition of the gateway hears seq 4
    h = handoff.decode(handoff.encode(batch, [r], reset=True, stored_at=12.5))
    assert (h.batch.seq, h.reset, h.stored_at, h.batch.readings) == (4, True, 12.5, [r])
    assert handoff.partition_of_topic(handoff.topic(17)) == 17
    assert handoff.partition_of_topic("akita/v1/gw-1/telemetry") is None
    from schemas import WireError

    with pytest.raises(WireError, match="stored_at: expected a number"):
        handoff.decode(b'{"batch": {}, "stored_at": "soon"}')
    with pytest.raises(WireError, match=r"batch: .*seq"):
        handoff.decode(b'{"batch": {"gateway_id": "gw-1"}, "stored_at": 1}')
