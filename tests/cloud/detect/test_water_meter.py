"""water_meter: household leak (24 busy hours in a row with a steady floor, seen on two
separate days), burst, reverse flow, tamper and a meter silent for 3 days, on hourly
readings fed through the engine as the cloud does."""

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


def run(
    uses_l: list[int],
    dev: str = "m-1",
    e: DetectorEngine | None = None,
    missing: frozenset[int] = frozenset(),
) -> list:
    """Feed one meter's hourly uses (litres) from a 100 m³ index; the detections. The
    hours in ``missing`` (1 = the first use) are never received."""
    e = e or DetectorEngine()
    index, out = 100_000, []
    out += e.feed([hour(0, index, dev)], {})
    for h, use in enumerate(uses_l, start=1):
        index += use
        if h not in missing:
            out += e.feed([hour(h, index, dev)], {})
    return out


def engine(**meter: object) -> DetectorEngine:
    return DetectorEngine(DetectConfig.model_validate({"meter": meter}))


def of(kind: str, detections: list) -> list:
    return [d for d in detections if d.kind == "meter_" + kind]


def household(days: int, scale: int) -> list[int]:
    """A day of use: quiet 01-05, morning and evening peaks; ``scale`` times as much."""
    day = [0, 0, 0, 0, 0, 3, 40, 35, 10, 5, 5, 8, 12, 6, 4, 5, 10, 20, 45, 60, 30, 15, 8, 2]
    return [u * scale for u in day] * days


def test_a_steady_floor_on_two_separate_days_is_a_leak_and_a_quiet_hour_clears_it() -> None:
    leak = [u + 3 for u in household(3, 1)]  # a running cistern: 3 L every hour
    out = run(leak)
    (raised,) = of("leak", out)
    # the first 24 h show the floor once; the window ending 24 h later shows it again
    assert raised.active and raised.ts == T0 + timedelta(hours=48)
    assert raised.extra == {"hours": 48, "leak_lph": 3.0, "days": 2}
    assert raised.value == pytest.approx(0.003)  # the estimated leak, m³/h
    assert "continuous use" in raised.message and "3 L/h" in raised.message
    assert of("leak", run([*leak, 0]))[-1].active is False


def test_one_day_is_enough_with_floor_days_1() -> None:
    leak = [u + 3 for u in household(2, 1)]
    (raised,) = of("leak", run(leak, e=engine(floor_days=1)))
    assert raised.ts == T0 + timedelta(hours=24) and raised.extra["hours"] == 24


def busy_nights(floors_l: list[int]) -> list[int]:
    """A household at three times the use whose nights after the first draw the given
    litres in each of their five quiet hours, then a quiet night."""
    days = [household(1, 3)]
    for f in floors_l:
        days.append([f] * 5 + household(1, 3)[5:])
    return [u for d in days for u in d] + household(1, 3)


def test_a_household_busy_through_one_night_raises_nothing() -> None:
    # even, small night draws look like a drip for a day: the next night is quiet again
    uses = busy_nights([2])
    assert of("leak", run(uses)) == []
    assert of("leak", run(uses, e=engine(floor_days=1)))  # the one-day rule fires on it


@pytest.mark.parametrize(("floors", "leak"), [([2, 6], False), ([2, 2], True)])
def test_two_busy_nights_are_a_leak_only_at_one_level(floors: list[int], leak: bool) -> None:
    assert bool(of("leak", run(busy_nights(floors)))) is leak


def test_an_hour_not_received_neither_breaks_the_floor_nor_clears_the_leak() -> None:
    leak = [u + 3 for u in household(4, 1)]
    # hour 30 lost (so hour 31's use is unknown too): 24 known hours in a row again from
    # 32 to 55, a window that ends 24 h or more after one before the gap (up to hour 29);
    # hour 70 lost after the alert opened: it stays open, no second onset
    out = of("leak", run(leak, missing=frozenset({30, 70})))
    assert [(d.active, d.ts) for d in out] == [(True, T0 + timedelta(hours=55))]


def test_a_quiet_hour_forgets_the_floor_seen_before_it() -> None:
    leak = [u + 3 for u in household(4, 1)]
    leak[29] = 0  # hour 30 quiet (the cistern fixed for an hour): start again
    (raised,) = of("leak", run(leak))
    assert raised.ts == T0 + timedelta(hours=30 + 48)


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
