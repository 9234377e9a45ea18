"""akita-hourly-v1 test vectors: bytes written out by hand from the format's table."""

from __future__ import annotations

import pytest

from cloud.lpwa.codecs import CodecError, codec_for, decode_hourly_v1

# 01 | 68632500 (2025-07-01T00:00Z) | 03 hours | 0001e240 = 123456 L | +10 L, +0 L |
# reverse 00000005 = 5 L | battery 0x57 = 87 % | alarms 0x05 = leak + tamper
THREE_HOURS = bytes.fromhex("0168632500030001e240000a0000000000055705")
# one hour, index 0, full battery, no alarm
ONE_HOUR = bytes.fromhex("01686333100100000000000000006400")


def test_three_hours_decode_to_their_own_hours() -> None:
    hours = decode_hourly_v1(THREE_HOURS)
    assert [h.end_s for h in hours] == [1751328000, 1751331600, 1751335200]
    assert [h.index for h in hours] == [123.456, 123.466, 123.466]
    # state belongs to the newest hour only
    assert [h.battery for h in hours] == [None, None, 87.0]
    assert hours[-1].reverse_volume == 0.005
    assert hours[-1].alarms == (True, False, True, False, False)
    assert hours[0].alarms is None


def test_one_hour() -> None:
    (h,) = decode_hourly_v1(ONE_HOUR)
    assert (h.end_s, h.index, h.battery, h.alarms) == (1751331600, 0.0, 100.0, (False,) * 5)


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (b"", "0 bytes"),
        (bytes.fromhex("02") + ONE_HOUR[1:], "byte 0 (format): 0x02"),
        (ONE_HOUR[:5] + b"\x00" + ONE_HOUR[6:], "byte 5 (hours): 0"),
        (ONE_HOUR[:1] + bytes.fromhex("68633311") + ONE_HOUR[5:], "is not on the hour"),
        (THREE_HOURS[:-1], "19 bytes, 3 hours need 20"),
        (ONE_HOUR[:-2] + b"\x65\x00", "battery byte: 101"),
        (ONE_HOUR[:-1] + b"\x40", "alarm byte: 0x40"),
    ],
)
def test_bad_payloads_name_the_field(payload: bytes, says: str) -> None:
    with pytest.raises(CodecError, match=says.replace("(", r"\(").replace(")", r"\)")):
        decode_hourly_v1(payload)


def test_unknown_profile_names_the_known_codecs() -> None:
    with pytest.raises(CodecError, match=r"no codec for 'acme-x'.*akita-hourly-v1"):
        codec_for("acme-x")
