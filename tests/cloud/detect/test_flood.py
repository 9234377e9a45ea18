from __future__ import annotations

import pytest
from pydantic import ValidationError

from cloud.detect.config import DetectConfig, FloodConfig
from cloud.detect.engine import DetectorEngine
from schemas.alert import Severity
from tests.cloud.detect.helpers import reading


def feed_depths(engine: DetectorEngine, dev: str, depths: list[float], step: float = 60.0):
    out = []
    for i, d in enumerate(depths):
        out += engine.feed([reading("flood_sensor", dev, i * step, depth=d)], {})
    return [d for d in out if d.kind == "flood_stage"]


def test_stages_rise_with_severity_and_japanese_names() -> None:
    got = feed_depths(DetectorEngine(), "f1", [0, 5, 10, 15, 20, 25, 30, 12, 0])
    stages = [(d.active, d.extra.get("stage"), d.severity) for d in got]
    assert stages == [
        (True, "caution", Severity.MODERATE),
        (True, "warning", Severity.SEVERE),
        (True, "danger", Severity.EXTREME),
        (True, "caution", Severity.MODERATE),
        (False, None, Severity.MODERATE),
    ]
    assert got[1].extra == {"stage": "warning", "stage_ja": "警戒", "depth_cm": 20.0}
    assert got[2].extra["stage_ja"] == "危険"
    assert all(d.public for d in got)


def test_flapping_level_does_not_flap_the_stage() -> None:
    depths = [0, 21] + [19.0, 20.5, 18.6, 21.0, 19.2] * 20 + [10.5]
    got = feed_depths(DetectorEngine(), "f1", depths)
    assert [d.extra.get("stage") for d in got] == ["warning", "caution"]


def test_per_device_stage_override_from_sites() -> None:
    engine = DetectorEngine(sites={"f2": {"stages_cm": [5, 15, 25]}})
    got = feed_depths(engine, "f2", [0, 6, 16])
    assert [d.extra["stage"] for d in got] == ["caution", "warning"]
    cfg = DetectConfig(sites={"f3": {"caution_cm": 3, "warning_cm": 6, "danger_cm": 9}})
    got = feed_depths(DetectorEngine(cfg), "f3", [0, 7])
    assert [d.extra["stage"] for d in got] == ["warning"]


def test_stage_depths_must_increase() -> None:
    with pytest.raises(ValidationError, match="increasing"):
        FloodConfig(stages_cm=(10, 5, 30))


def test_rate_of_rise_forecasts_time_to_next_stage() -> None:
    engine = DetectorEngine()
    out = []
    # 0.5 cm per minute = 30 cm/h, starting at 4 cm: caution (10 cm) is 12 minutes away
    for i in range(6):
        out += engine.feed([reading("flood_sensor", "f1", i * 60, depth=4 + 0.5 * i)], {})
    rising = [d for d in out if d.kind == "flood_rising"]
    assert len(rising) == 1 and rising[0].active and rising[0].public
    extra = rising[0].extra
    assert extra["rate_cm_per_h"] == pytest.approx(30.0, rel=1e-6)
    assert extra["next_stage"] == "caution"
    # fires on the 4th sample (5.5 cm): 4.5 cm to go at 30 cm/h = 9 minutes
    assert extra["eta_min"] == pytest.approx(9.0, abs=0.1)
    # a steady level clears it
    for i in range(6, 30):
        out += engine.feed([reading("flood_sensor", "f1", i * 60, depth=6.5)], {})
    assert [d.active for d in out if d.kind == "flood_rising"] == [True, False]


def _feed_times(order: list[int], depths: list[float]) -> list[tuple[str, bool, object]]:
    engine = DetectorEngine()
    out = []
    for i in order:
        out += engine.feed([reading("flood_sensor", "f1", i * 60, depth=depths[i])], {})
    return [(d.kind, d.active, d.extra.get("stage")) for d in out]


def test_a_late_reading_does_not_move_the_stage_or_message_residents_twice() -> None:
    """A batch the detector tier applied after it stopped waiting for it (issue 17's
    reorder time, hit under load) brings a reading older than the sensor's newest. Taken
    as the depth of now, its lower depth dropped the stage and the next reading raised it
    again: a second 警戒 message."""
    depths = [0, 4, 8, 12, 16, 21, 24, 27, 29, 26, 24, 23, 23, 23]
    in_order = _feed_times(list(range(len(depths))), depths)
    late = [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 7, 11, 12, 13]  # 27 cm at 7 min arrives after 10
    late_low = [0, 1, 2, 3, 4, 6, 7, 8, 5, 9, 10, 11, 12, 13]  # 21 cm after the 29 cm
    for order in (late, late_low):
        got = _feed_times(order, depths)
        stages = [g for g in got if g[0] == "flood_stage"]
        assert stages == [g for g in in_order if g[0] == "flood_stage"], order
    depths = [0, 12, 25, 12, 25]  # a late 12 cm between two 25 cm readings
    got = _feed_times([0, 1, 2, 4, 3], depths)
    assert [g[2] for g in got if g[0] == "flood_stage"] == ["caution", "warning"]
