from __future__ import annotations

from cloud.detect.engine import DetectorEngine
from schemas.wire import DeviceInfo
from tests.cloud.detect.helpers import at, kinds, reading


def test_offline_after_n_poll_intervals_and_back() -> None:
    engine = DetectorEngine()
    devices = {
        "f1": DeviceInfo(device_id="f1", kind="flood_sensor", poll_interval_s=60),
        "f2": DeviceInfo(device_id="f2", kind="flood_sensor", poll_interval_s=600),
    }
    engine.feed(
        [reading("flood_sensor", "f1", 0, depth=0.0), reading("flood_sensor", "f2", 0, depth=0.0)],
        devices,
    )
    assert engine.tick(at(299)) == []
    off = engine.tick(at(301))
    assert [(d.kind, d.device_id, d.ts) for d in off] == [("device_offline", "f1", at(300))]
    assert engine.tick(at(400)) == []  # reported once
    assert [d.device_id for d in engine.tick(at(3001))] == ["f2"]
    back = engine.feed([reading("flood_sensor", "f1", 500, depth=0.0)], devices)
    assert kinds(back, active=False) == ["device_offline"]


def test_seq_gaps_per_gateway() -> None:
    engine = DetectorEngine()
    assert engine.seq_gap("gw1", 10, at(0)) == []
    assert engine.seq_gap("gw1", 11, at(1)) == []
    assert engine.seq_gap("gw2", 500, at(1)) == []
    gap = engine.seq_gap("gw1", 14, at(2))
    assert len(gap) == 1 and gap[0].kind == "seq_gap" and gap[0].device_id == "gw1"
    assert gap[0].extra == {"missing": 2, "after_seq": 11, "seq": 14}
    assert engine.seq_gap("gw1", 12, at(3)) == []  # a late re-send is not a gap
    cleared = engine.seq_gap("gw1", 15, at(4))
    assert [(d.kind, d.active) for d in cleared] == [("seq_gap", False)]
