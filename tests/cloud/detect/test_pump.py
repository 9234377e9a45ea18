from __future__ import annotations

from cloud.detect.config import DetectConfig, PumpConfig
from cloud.detect.engine import DetectorEngine
from tests.cloud.detect.helpers import at, kinds, reading


def pump(engine: DetectorEngine, t: float, **v):
    return engine.feed([reading("manhole_pump", "p1", t, **v)], {})


def test_fail_to_start_from_the_level_alone() -> None:
    engine = DetectorEngine()  # no fault codes reported: the level tells
    out = []
    # one normal cycle teaches the start level (1.2 m)
    for i, lvl in enumerate([0.8, 1.0, 1.2]):
        out += pump(engine, i * 30, level=lvl, pump1_running=False)
    out += pump(engine, 90, level=1.2, pump1_running=True, pump1_current=9.0)
    out += pump(engine, 120, level=0.4, pump1_running=False, pump1_current=0.0)
    assert "pump_fail_to_start" not in kinds(out)
    levels = [0.6, 0.9, 1.2, 1.3, 1.4, 1.5, 1.6]
    for i, lvl in enumerate(levels):
        out += pump(engine, 150 + i * 30, level=lvl)
    fail = [d for d in out if d.kind == "pump_fail_to_start"]
    # start level 1.2 m + fail_rise_m 0.15 m: the first rising sample past 1.35 m
    assert len(fail) == 1 and fail[0].active and fail[0].value == 1.4
    out = pump(engine, 400, level=1.6, pump2_running=True, pump2_current=9.0)
    assert kinds(out, active=False) == ["pump_fail_to_start"]


def test_fail_to_start_and_fault_from_plc_code() -> None:
    engine = DetectorEngine()
    out = pump(engine, 0, level=1.21, pump1_running=False, fault_code=11)
    assert sorted(kinds(out)) == ["pump_fail_to_start", "pump_fault"]
    out = pump(engine, 30, fault_code=0, level=0.5)
    assert sorted(kinds(out, active=False)) == ["pump_fail_to_start", "pump_fault"]


def test_wet_well_high_uses_site_level() -> None:
    engine = DetectorEngine(sites={"p1": {"high_level_m": 2.0}})
    out = []
    for i, lvl in enumerate([1.9, 2.05, 1.95, 2.1, 1.85]):
        out += pump(engine, i * 30, level=lvl, pump1_running=True, pump1_current=9.0)
    assert [(d.kind, d.active) for d in out if d.kind == "wet_well_high"] == [
        ("wet_well_high", True),
        ("wet_well_high", False),
    ]


def test_short_cycling() -> None:
    engine = DetectorEngine(DetectConfig(pump=PumpConfig(short_cycle_starts=6)))
    out = []
    for i in range(20):
        out += pump(engine, i * 60, pump1_running=i % 2 == 1, pump1_current=9.0 * (i % 2))
    cyc = [d for d in out if d.kind == "pump_short_cycle"]
    assert len(cyc) == 1 and cyc[0].active
    assert cyc[0].ts == at(12 * 60)  # the sixth 60-s run ends
    # long runs, however frequent, are not short-cycling (a storm keeps pumps busy)
    engine = DetectorEngine()
    out = []
    for i in range(40):
        out += pump(engine, i * 60, pump1_running=i % 4 != 0, pump1_current=9.0)
    assert "pump_short_cycle" not in kinds(out)


def test_over_and_under_current_against_running_state() -> None:
    engine = DetectorEngine()
    out = []
    for i, cur in enumerate([9.0, 0.5, 0.4, 9.0, 55.0, 56.0]):
        out += pump(engine, i * 30, pump1_running=True, pump1_current=cur)
    got = [(d.active, d.extra.get("mode")) for d in out if d.kind == "pump_current"]
    assert got == [(True, "under"), (False, None), (True, "over")]
    engine = DetectorEngine()
    out = []
    for i in range(3):
        out += pump(engine, i * 30, pump2_running=False, pump2_current=6.0)
    assert [d.extra.get("mode") for d in out if d.kind == "pump_current"] == ["idle_draw"]


def test_runtime_imbalance() -> None:
    engine = DetectorEngine()
    out = []
    for i in range(30):  # hourly samples: pump 1 runs 0.5 h per hour, pump 2 0.1 h
        h = i * 3600
        out += pump(engine, h, pump1_run_hours=100 + 0.5 * i, pump2_run_hours=100 + 0.1 * i)
    imb = [d for d in out if d.kind == "pump_runtime_imbalance"]
    assert len(imb) == 1 and imb[0].active and imb[0].value == 5.0


def test_a_late_reading_does_not_overwrite_the_newer_state() -> None:
    """A batch the detector tier applied late brings values older than the station's
    newest: the fault cleared at 30 s must stay cleared when the 15 s reading (fault 11,
    pump off, well rising) arrives after it; a field the station has nothing newer of
    (pump 2's current) is still taken."""
    engine = DetectorEngine()
    out = pump(engine, 0, level=1.21, pump1_running=False, fault_code=11)
    out += pump(engine, 30, fault_code=0, level=0.5, pump1_running=True, pump1_current=9.0)
    assert sorted(kinds(out, active=False)) == ["pump_fail_to_start", "pump_fault"]
    late = pump(engine, 15, level=1.3, pump1_running=False, fault_code=11, pump2_current=0.0)
    assert late == []
    station = engine.pump.stations["p1"]
    assert station.running == [True, False] and station.level == 0.5 and station.code == 0
    assert station.current == [9.0, 0.0]
