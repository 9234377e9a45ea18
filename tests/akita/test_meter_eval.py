"""Household-meter detectors scored on the meter simulator's labelled households
(payloads decoded by the cloud's codec, the meters' leak and burst bits removed)."""

from __future__ import annotations

from functools import cache

import pytest

from akita.meter_eval import MeterScore, run
from akita.meter_report import goals_met
from cloud.detect.config import DetectConfig


@cache
def _seed_1() -> MeterScore:
    return run(600, seed=1)


def test_leak_headline_and_every_meter_detector_on_seed_1() -> None:
    s = _seed_1()
    leak = s.leak
    assert leak.labels >= 5 and s.heavy >= 20, s  # the sample is not empty
    assert leak.recall >= 0.95 and leak.precision >= 0.9, s
    assert s.heavy_alerts == 0, s  # three times the use, with quiet night hours
    assert goals_met(s)
    for alert in ("meter_burst", "meter_reverse_flow", "meter_tamper", "device_offline"):
        d = s.detectors[alert]
        assert d.labels >= 2 and d.found == d.labels and d.false == 0, (alert, d)


def test_without_the_steady_floor_the_24_hour_rule_alerts_busy_nights() -> None:
    # The rule alone (floor_hours = 1) also fires on households whose night
    # hours all happen to be busy: the floor rule is what lifts precision.
    plain = DetectConfig.model_validate({"meter": {"floor_hours": 1}})
    s_plain, s = run(600, seed=1, config=plain), _seed_1()
    assert s_plain.leak.false > s.leak.false, (s_plain, s)
    assert s_plain.leak.found == s.leak.found


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="meters: 0"):
        run(0)
    with pytest.raises(ValueError, match="days: 2"):
        run(10, days=2)
