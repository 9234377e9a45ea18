from __future__ import annotations

import pytest

from cloud.detect.callunit import indoor_wbgt
from cloud.detect.engine import DetectorEngine
from schemas.alert import Severity
from schemas.wire import DeviceInfo
from tests.cloud.detect.helpers import at, kinds, reading


def test_button_press_is_immediate_and_extreme() -> None:
    engine = DetectorEngine()
    out = engine.feed([reading("call_unit", "c1", 0, event="button")], {})
    press = [d for d in out if d.kind == "button_press"]
    assert len(press) == 1 and press[0].active and press[0].severity is Severity.EXTREME
    assert press[0].ts == at(0)
    # a second press is a new detection too; cancel clears it
    out = engine.feed([reading("call_unit", "c1", 5, event="button")], {})
    assert kinds(out) == ["button_press"]
    out = engine.feed([reading("call_unit", "c1", 9, event="cancel")], {})
    assert kinds(out, active=False) == ["button_press"]


def test_missing_heartbeat_from_tick() -> None:
    engine = DetectorEngine()
    devices = {"c1": DeviceInfo(device_id="c1", kind="call_unit", poll_interval_s=600)}
    engine.feed([reading("call_unit", "c1", 0, event="heartbeat")], devices)
    assert "heartbeat_missing" not in kinds(engine.tick(at(1700)))
    late = [d for d in engine.tick(at(1801)) if d.kind == "heartbeat_missing"]
    assert len(late) == 1 and late[0].device_id == "c1" and late[0].ts == at(1800)
    back = engine.feed([reading("call_unit", "c1", 1900, event="heartbeat")], devices)
    assert "heartbeat_missing" in kinds(back, active=False)


def test_wbgt_formula_and_stages() -> None:
    # 0.725·Ta + 0.0368·RH + 0.00364·Ta·RH − 3.246
    assert indoor_wbgt(30.0, 70.0) == pytest.approx(28.724, abs=1e-3)
    engine = DetectorEngine()
    seen = []
    for i, temp in enumerate([24.0, 31.5, 34.5, 30.0, 22.0]):
        out = engine.feed(
            [reading("call_unit", "u9", i * 600, temperature=temp, humidity=60.0)], {}
        )
        seen += [(d.active, d.extra.get("stage"), d.severity) for d in out if d.kind == "heat_wbgt"]
    # WBGT at 60 % = 0.9434·Ta − 1.038: 24->21.6, 31.5->28.7, 34.5->31.5, 30->27.3, 22->19.7
    assert seen == [
        (True, "severe_warning", Severity.SEVERE),
        (True, "danger", Severity.EXTREME),
        (True, "warning", Severity.MODERATE),
        (False, None, Severity.MODERATE),
    ]


def test_a_late_cancel_does_not_close_a_newer_call_and_a_late_room_reading_no_stage() -> None:
    """Batches the detector tier applied after it stopped waiting for them (under load)
    bring readings older than the unit's newest. A cancel older than the newest press
    closed that newer emergency call; an older, cooler room reading dropped the heat stage
    and the next reading raised it again (a second heat notice)."""
    engine = DetectorEngine()
    for t, ev in ((0, "button"), (60, "button")):
        engine.feed([reading("call_unit", "c1", t, event=ev)], {})
    late_cancel = engine.feed([reading("call_unit", "c1", 30, event="cancel")], {})
    assert [d for d in late_cancel if d.kind == "button_press"] == []  # the call stays open
    late_press = engine.feed([reading("call_unit", "c1", 20, event="button")], {})
    assert kinds(late_press) == ["button_press"]  # a press is never dropped, late or not
    assert kinds(engine.feed([reading("call_unit", "c1", 90, event="cancel")], {}), active=False)

    seen = []
    for t, temp in ((0, 24.0), (600, 31.5), (1800, 31.6), (1200, 22.0), (2400, 31.5)):
        out = engine.feed([reading("call_unit", "u9", t, temperature=temp, humidity=60.0)], {})
        seen += [(d.active, d.extra.get("stage")) for d in out if d.kind == "heat_wbgt"]
    assert seen == [(True, "severe_warning")]
