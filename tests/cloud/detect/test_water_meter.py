"""water_meter: household leak (24 busy hours in a row), burst, reverse flow, tamper and a
meter silent for 3 days, on hourly readings fed through the engine as the cloud does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.detect.config import DetectConfig
from cloud.detect.engine import DetectorEngine
from schemas.wire import reading_adapter

T0 = datetime(2026, 8, 3, 0, 0, tzinfo=UTC)


def hour(h: int, index_l: int, dev: str = "m-1", **values: object) -> object:
    return reading_adapter.validate_python(
        {
            "device_id": dev,
            "kind": "water_meter",
            "ts": T0 + timedelta(hours=h),
            "values": {"index": index_l / 1000, **values},
        }
    )


def run(uses_l: list[int], dev: str = "m-1", e: DetectorEngine | None = None) -> list:
    """Feed one meter's hourly uses (litres) from a 100 m³ index; the detections."""
    e = e or DetectorEngine()
    index, out = 100_000, []
    out += e.feed([hour(0, index, dev)], {})
    for h, use in enumerate(uses_l, start=1):
        index += use
        out += e.feed([hour(h, index, dev)], {})
    return out


def of(kind: str, detections: list) -> list:
    return [d for d in detections if d.kind == "meter_" + kind]


def household(days: int, scale: int) -> list[int]:
    """A day of use: quiet 01-05, morning and evening peaks; ``scale`` times as much."""
    day = [0, 0, 0, 0, 0, 3, 40, 35, 10, 5, 5, 8, 12, 6, 4, 5, 10, 20, 45, 60, 30, 15, 8, 2]
    return [u * scale for u in day] * days


def test_continuous_use_for_24_hours_is_a_leak_and_a_quiet_hour_clears_it() -> None:
    leak = [u + 3 for u in household(2, 1)]  # a running cistern: 3 L every hour
    out = run(leak)
    (raised,) = of("leak", out)
    assert raised.active and raised.ts == T0 + timedelta(hours=24)
    assert raised.extra["hours"] == 24
    assert of("leak", run([*leak, 0]))[-1].active is False


@pytest.mark.parametrize("scale", [1, 4, 10])
def test_a_household_that_simply_uses_more_water_raises_nothing(scale: int) -> None:
    assert run(household(7, scale)) == []


def test_a_missing_hour_breaks_the_chain() -> None:
    e = DetectorEngine()
    index, out = 100_000, []
    for h in range(0, 40):
        index += 5
        if h != 20:  # hour 20 never arrived: 20 + 19 busy hours are not 24 in a row
            out += e.feed([hour(h, index)], {})
    assert of("leak", out) == []


def test_burst_is_one_hour_far_above_household_use_and_clears() -> None:
    out = run([10, 1200, 900, 10])
    (raised, cleared) = of("burst", out)
    assert raised.active and raised.value == pytest.approx(1.2)
    assert raised.severity.name == "SEVERE"
    assert not cleared.active and cleared.ts == T0 + timedelta(hours=4)


def test_reverse_flow_and_tamper_from_the_meter() -> None:
    e = DetectorEngine()
    out = e.feed([hour(0, 1000, reverse_volume=0.010, tamper=False)], {})
    out += e.feed([hour(1, 1002, reverse_volume=0.030, tamper=True)], {})
    out += e.feed([hour(2, 1004, reverse_volume=0.030, tamper=False)], {})
    assert [d.active for d in of("reverse_flow", out)] == [True, False]
    assert of("reverse_flow", out)[0].value == pytest.approx(0.020)
    assert [d.active for d in of("tamper", out)] == [True, False]


def test_the_meters_own_leak_bit_raises_a_leak() -> None:
    e = DetectorEngine()
    (raised,) = of("leak", e.feed([hour(0, 1000, leak=True)], {}))
    assert "leak alarm" in raised.message


def test_late_and_repeated_hours_are_counted_not_judged() -> None:
    e = DetectorEngine()
    e.feed([hour(5, 1000), hour(6, 1010)], {})
    assert e.feed([hour(3, 990), hour(6, 1010)], {}) == []
    assert e.plugins["water_meter"].late == 2


def test_silent_for_three_days_is_device_offline() -> None:
    e = DetectorEngine(DetectConfig())
    e.feed([hour(0, 1000)], {})
    assert e.tick(T0 + timedelta(days=3, seconds=-1)) == []
    (silent,) = e.tick(T0 + timedelta(days=3, seconds=1))
    assert silent.kind == "device_offline" and silent.device_id == "m-1"
