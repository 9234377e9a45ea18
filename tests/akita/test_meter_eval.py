"""Household-meter detectors scored on the meter simulator's labelled households
(payloads decoded by the cloud's codec, the meters' own alarm bits removed)."""

from __future__ import annotations

from akita.meter_eval import run
from cloud.detect.config import DetectConfig


def test_leak_recall_no_alert_for_heavy_users_and_silent_meters_found() -> None:
    s = run(600, seed=1)
    assert s.leaks >= 5 and s.heavy >= 20 and s.silent_due >= 3  # the sample is not empty
    assert s.recall >= 0.95, s
    assert s.heavy_alerts == 0, s  # three times the use, with quiet night hours
    assert s.silent_found == s.silent_due and s.silent_false == 0, s


def test_precision_of_the_24_hour_rule_and_of_30_hours() -> None:
    # The rule (24 busy hours) also fires on households whose two night halves
    # happen to be busy: precision about 0.72 here, under the 0.9 goal. 30 hours keeps
    # recall and meets it on this simulator; the default stays the until the
    # waterworks decides (docs/lpwa.md).
    s24 = run(600, seed=1)
    s30 = run(600, seed=1, config=DetectConfig.model_validate({"meter": {"leak_hours": 30}}))
    assert s24.precision < 0.9, s24
    assert s30.precision >= 0.9 and s30.recall >= 0.95, s30
