"""Wire contract behaviour: ranges, units, UTC, ids, topics and error messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas import Batch, DeviceKind, WireError, decode_batch, encode_batch, field_unit, topics
from schemas.clock import SimClock


def _batch(**reading: object) -> bytes:
    base = {
        "kind": "water_block",
        "device_id": "wb-01",
        "ts": "2026-06-01T00:00:00Z",
        "values": {"flow": 10.0},
    }
    base.update(reading)
    return json.dumps(
        {"gateway_id": "gw-1", "seq": 3, "sent_at": "2026-06-01T00:00:01Z", "readings": [base]}
    ).encode()


def test_round_trip_keeps_values_and_converts_to_utc() -> None:
    jst = timezone(timedelta(hours=9))
    batch = Batch(
        gateway_id="gw-1",
        seq=0,
        sent_at=datetime(2026, 6, 1, 9, tzinfo=jst),
        readings=[
            {
                "kind": "manhole_pump",
                "device_id": "mp-1",
                "ts": datetime(2026, 6, 1, 9, tzinfo=jst),
                "values": {"level": 1.25, "pump1_running": True, "fault_code": 0},
            }
        ],
    )
    again = decode_batch(encode_batch(batch))
    assert again == batch
    assert again.readings[0].ts == datetime(2026, 6, 1, 0, tzinfo=UTC)
    assert again.readings[0].ts.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("reading", "field", "needle"),
    [
        ({"values": {"flow": "abc"}}, "values.flow", "'abc'"),
        ({"values": {"flow": True}}, "values.flow", "True"),
        ({"values": {"flow": "12"}}, "values.flow", "'12'"),
        ({"values": {"pressure": 9.9}}, "values.pressure", "9.9"),
        ({"values": {"color": 1}}, "values.color", "color"),
        ({"kind": "toaster"}, "kind", "toaster"),
        ({"device_id": "a/b#"}, "device_id", "a/b#"),
        ({"ts": "2026-06-01T00:00:00"}, "ts", "timezone"),
    ],
)
def test_bad_readings_name_field_and_value(reading: dict, field: str, needle: str) -> None:
    with pytest.raises(WireError) as info:
        decode_batch(_batch(**reading))
    assert field in info.value.reason
    assert needle in info.value.reason


def test_non_utf8_and_oversized_payloads_are_wire_errors() -> None:
    with pytest.raises(WireError, match="UTF-8"):
        decode_batch(b"\xff\xfe{}")
    with pytest.raises(WireError, match="exceeds"):
        decode_batch(b" " * (5 * 1024 * 1024))


def test_every_kind_has_a_values_model_with_units() -> None:
    assert field_unit(DeviceKind.WATER_BLOCK, "flow") == "m³/h"
    assert field_unit(DeviceKind.WATER_BLOCK, "pressure") == "MPa"
    assert field_unit(DeviceKind.MANHOLE_PUMP, "level") == "m"
    assert field_unit(DeviceKind.FLOOD_SENSOR, "depth") == "cm"
    assert field_unit(DeviceKind.FLOOD_SENSOR, "rain_intensity") == "mm/h"
    assert field_unit(DeviceKind.VEHICLE, "speed") == "km/h"
    assert field_unit(DeviceKind.CALL_UNIT, "temperature") == "°C"
    assert field_unit(DeviceKind.CALL_UNIT, "humidity") == "%"
    assert field_unit(DeviceKind.MANHOLE_PUMP, "pump1_running") is None


def test_topics_round_trip_and_refuse_wildcards() -> None:
    assert topics.telemetry("gw-7") == "akita/v1/gw-7/telemetry"
    assert topics.parse("akita/v1/gw-7/telemetry") == ("gw-7", topics.Channel.TELEMETRY)
    assert topics.parse("akita/v1/deadletter/telemetry") is None
    assert topics.parse("other/v1/gw/telemetry") is None
    assert topics.shared("ingest", topics.subscription(topics.Channel.TELEMETRY)) == (
        "$share/ingest/akita/v1/+/telemetry"
    )
    for bad in ("gw/1", "gw+", "#", "alerts", ""):
        with pytest.raises(ValueError, match="not allowed"):
            topics.telemetry(bad)


def test_sim_clock_runs_faster_than_the_wall(tmp_path) -> None:
    clock = SimClock(origin_real=1000.0, origin_sim=5000.0, speed=60)
    assert clock.real_seconds(60) == 1.0
    path = tmp_path / "clock.json"
    clock.write(path)
    assert SimClock.read(path) == clock
