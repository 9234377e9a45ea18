from __future__ import annotations

import math
import random

from cloud.detect.config import DetectConfig, LeakConfig, WaterConfig
from cloud.detect.engine import DetectorEngine
from cloud.detect.leak import LeakTracker
from schemas.alert import Severity
from tests.cloud.detect.helpers import T0, kinds, reading

DAY = 86400.0
STEP = 300.0


def demand(t: float, mean: float, rnd: random.Random) -> float:
    """A diurnal curve in JST (T0 is 09:00 JST), lowest around 03:00-04:00 JST."""
    lh = ((t + 9 * 3600) % DAY) / 3600
    shape = 1 + 0.6 * math.sin((lh - 9) / 24 * 2 * math.pi) - 0.25 * math.cos(lh / 12 * 2 * math.pi)
    return max(0.35, shape) * mean * (1 + rnd.gauss(0, 0.02))


def run_block(engine: DetectorEngine, days: float, flow_at, pressure_at=None, dev: str = "w1"):
    out = []
    t = 0.0
    while t < days * DAY:
        q = flow_at(t)
        p = pressure_at(t, q) if pressure_at else 0.5
        out += [
            (t, d) for d in engine.feed([reading("water_block", dev, t, flow=q, pressure=p)], {})
        ]
        t += STEP
    return out


def test_leak_found_within_three_nights_against_the_blocks_own_baseline() -> None:
    rnd = random.Random(3)
    leak_t = 10 * DAY + 5 * 3600  # day 10, 14:00 JST

    def flow(t: float) -> float:
        return demand(t, 120, rnd) + (6.0 if t >= leak_t else 0.0)

    # a two-week-old block: the learned model after 7 nights (the default waits 21)
    cfg = DetectConfig(water=WaterConfig(leak=LeakConfig(learn_nights=7)))
    out = run_block(DetectorEngine(cfg), 14, flow)
    leaks = [(t, d) for t, d in out if d.kind == "leak" and d.active]
    assert leaks, "leak not detected"
    t, first = leaks[0]
    assert leak_t <= t <= leak_t + 3 * DAY
    assert first.severity is Severity.MODERATE and first.value and first.value > 3
    assert first.extra["event"] == "onset"


def test_no_leak_alarm_on_a_healthy_block_with_busier_weekend_nights() -> None:
    rnd = random.Random(5)

    def flow(t: float) -> float:
        weekend = ((int((t + T0.timestamp() + 9 * 3600) // DAY) + 3) % 7) >= 5
        return demand(t, 120, rnd) * (1.15 if weekend else 1.0)

    out = run_block(DetectorEngine(), 28, flow)
    assert "leak" not in kinds([d for _, d in out])


def test_leak_clears_after_repair() -> None:
    tr = LeakTracker(LeakConfig(utc_offset_h=0, learn_nights=7))
    events = []
    for night in range(25):
        extra = 20.0 if 12 <= night < 18 else 0.0
        for k in range(72):  # 00:00-06:00 every 5 min, then one daytime sample closes the night
            v = tr.add(night * DAY + k * STEP, 50.0 + extra + (k % 3) * 0.3)
            if v and v.event:
                events.append((night, v.event))
        v = tr.add(night * DAY + 12 * 3600, 150.0)
        if v and v.event:
            events.append((night, v.event))
    assert events == [(12, "onset"), (18, "clear")]


def test_burst_within_two_samples_needs_both_flow_spike_and_pressure_drop() -> None:
    rnd = random.Random(9)
    burst_t = 2 * DAY + 3600

    def flow(t: float) -> float:
        return demand(t, 80, rnd) + (150.0 if t >= burst_t else 0.0)

    def pressure(t: float, q: float) -> float:
        return 0.55 - 1e-5 * q**1.852

    out = run_block(DetectorEngine(), 2.2, flow, pressure)
    bursts = [(t, d) for t, d in out if d.kind == "burst" and d.active]
    assert len(bursts) == 1
    assert burst_t <= bursts[0][0] <= burst_t + 2 * STEP
    assert bursts[0][1].severity is Severity.SEVERE
    # the same spike with steady pressure (a meter reading error, say) is not a burst
    rnd = random.Random(9)
    out = run_block(DetectorEngine(), 2.2, flow, lambda t, q: 0.5)
    assert "burst" not in kinds([d for _, d in out])


def test_pressure_low_high_with_hysteresis() -> None:
    engine = DetectorEngine(DetectConfig(water=WaterConfig(pressure_low=0.2, pressure_high=0.7)))
    seq = [0.4, 0.19, 0.21, 0.19, 0.23, 0.71, 0.69, 0.67]
    out = []
    for i, p in enumerate(seq):
        out += engine.feed([reading("water_block", "w1", i * 60, pressure=p)], {})
    got = [(d.kind, d.active) for d in out if d.kind.startswith("pressure")]
    assert got == [
        ("pressure_low", True),
        ("pressure_low", False),
        ("pressure_high", True),
        ("pressure_high", False),
    ]


def test_stuck_sensor_and_out_of_range() -> None:
    engine = DetectorEngine()
    out = []
    for i in range(20):
        p = 0.5123 if i >= 5 else 0.5 + 0.001 * i
        out += engine.feed([reading("water_block", "w1", i * 60, flow=100 + i, pressure=p)], {})
    stuck = [d for d in out if d.kind == "stuck_sensor"]
    assert len(stuck) == 1 and stuck[0].extra["field"] == "pressure"
    assert stuck[0].ts.timestamp() - T0.timestamp() == (5 + 12 - 1) * 60
    out = engine.feed([reading("water_block", "w1", 1300, flow=100.0, pressure=0.49)], {})
    assert kinds(out, active=False) == ["stuck_sensor"]
    out = engine.feed([reading("water_block", "w1", 1400, flow=20000.0, pressure=0.49)], {})
    assert kinds(out) == ["out_of_range"] and "flow=20000.0" in out[0].message
    out = engine.feed([reading("water_block", "w1", 1500, flow=100.0, pressure=0.49)], {})
    assert kinds(out, active=False) == ["out_of_range"]


def test_profile_anomaly_robust_z_against_learned_day() -> None:
    rnd = random.Random(1)
    odd_t = 9 * DAY + 6 * 3600  # 15:00 JST on day 9, for 30 minutes

    def flow(t: float) -> float:
        base = demand(t, 100, rnd)
        return base * 2.5 if odd_t <= t < odd_t + 1800 else base

    out = run_block(DetectorEngine(), 10, flow)
    hits = [(t, d) for t, d in out if d.kind == "profile_anomaly"]
    assert [d.active for _, d in hits] == [True, False]
    assert odd_t <= hits[0][0] <= odd_t + 3 * STEP
    assert hits[0][1].value and hits[0][1].value > 6


def test_a_late_reading_from_before_midnight_does_not_reset_the_new_day() -> None:
    """A batch the detector tier applied late brings a reading older than the block's
    newest. Taken in, a reading from the day before closed the new day's night and mean
    (the day then lacked the hours it needs and was not judged for leaks)."""
    engine = DetectorEngine()
    midnight = 2 * DAY - 9 * 3600  # local (JST) midnight in the helpers' UTC seconds
    feed = [midnight - 600, midnight, midnight + 300, midnight - 300, midnight + 600]
    for t in feed:
        engine.feed([reading("water_block", "w1", t, flow=50.0, pressure=0.5)], {})
    tracker = engine.water.blocks["w1"].leak
    assert isinstance(tracker, LeakTracker)
    assert tracker._daymean.count == 3  # 00:00, 00:05, 00:10 (not restarted by 23:55)
