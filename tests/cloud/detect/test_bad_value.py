"""bad_value: a field flagged untrusted for longer than the setting raises one alert per
device, naming the fields; a value or an 'ok' flag clears it. Unknown kinds never raise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.detect.config import DetectConfig
from cloud.detect.engine import DetectorEngine
from cloud.detect.parts import alert_domains, parts
from schemas.kinds import KINDS
from schemas.wire import reading_adapter

T0 = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


def reading(minute: float, values: dict[str, float], **more: object) -> object:
    return reading_adapter.validate_python(
        {
            "device_id": "wb-1",
            "kind": "water_block",
            "ts": T0 + timedelta(minutes=minute),
            "values": values,
            **more,
        }
    )


def engine(after_s: float = 600.0) -> DetectorEngine:
    return DetectorEngine(DetectConfig.model_validate({"quality": {"bad_value_after_s": after_s}}))


def bad_values(detections: list) -> list:
    return [d for d in detections if d.kind == "bad_value"]


def test_flag_longer_than_the_setting_raises_then_a_value_clears() -> None:
    e = engine(600)
    out = []
    for minute in range(0, 10):  # 9 minutes invalid: not yet
        out += e.feed([reading(minute, {"pressure": 0.3}, quality={"flow": "not a number"})], {})
    assert bad_values(out) == []
    out = e.feed([reading(10, {"pressure": 0.3}, quality={"flow": "infinite"})], {})
    (raised,) = bad_values(out)
    assert raised.active and raised.device_id == "wb-1"
    assert raised.title == "No valid value: flow"
    assert "flow: infinite since 2026-06-01 03:00 UTC" in raised.message
    assert raised.value == 600.0
    out = e.feed([reading(11, {"flow": 12.5})], {})
    (cleared,) = bad_values(out)
    assert not cleared.active


def test_ok_flag_clears_and_tick_raises_without_further_readings() -> None:
    e = engine(300)
    e.feed([reading(0, {"pressure": 0.3}, quality={"totaliser": "out of range (0..1e+12)"})], {})
    assert bad_values(e.tick(T0 + timedelta(minutes=4))) == []
    (raised,) = bad_values(e.tick(T0 + timedelta(minutes=5)))
    assert raised.active and "totaliser" in raised.title
    (cleared,) = bad_values(e.feed([reading(6, {}, quality={"totaliser": "ok"})], {}))
    assert not cleared.active
    assert e.bad_value.invalid == {}


def test_a_reading_of_a_kind_without_detector_part_is_counted_not_raised() -> None:
    e = engine()
    r = reading(0, {"flow": 1.0})
    e._route.pop("water_block")  # as a kind no detector part takes
    assert e.feed([r, r], {}) == []
    assert e.unrouted == {"water_block": 2}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_builtin_kind_has_a_detector_part_and_its_alerts_map_back(kind: str) -> None:
    assert kind in parts()
    for alert in parts()[kind].alerts:
        assert alert_domains()[alert] == kind
