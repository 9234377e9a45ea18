"""Payload codecs, one per meter model, chosen by the device profile's name.

A codec turns the FRMPayload bytes of one uplink into hourly :class:`HourValues`, each
with the time of the hour it describes: a Class A meter packs several hours into one
uplink, so a reading's time is never the uplink's time. A payload a codec cannot decode
raises :class:`CodecError` naming the byte or field, and the uplink is dead-lettered.

``akita-hourly-v1`` (the pilot's format, all integers big-endian)::

    0      u8   format, 0x01
    1..4   u32  end of the first hour, Unix seconds (a multiple of 3600)
    5      u8   n, hours in this uplink (1..12)
    6..9   u32  forward index at the end of the first hour, litres
    then   u16  x (n-1): litres used in each following hour
    then   u32  reverse-flow volume since installation, litres
    then   u8   battery, % (0..100)
    then   u8   alarm bits: 0 leak, 1 burst, 2 tamper, 3 dry pipe, 4 low battery

That is 16 + 2n bytes (28 for six hours), within the 10-50 bytes pilot meters send.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate

HOUR_S = 3600
ALARM_BITS = ("leak", "burst", "tamper", "dry_pipe", "low_battery")


class CodecError(ValueError):
    """A payload this codec cannot decode; ``str()`` names the field and the value."""


@dataclass(slots=True)
class HourValues:
    """One hour of one meter, as decoded (``index`` and ``reverse_volume`` in m³). Read
    it, do not change it: not frozen only because a frozen dataclass took 6 times as
    long to make (the worker makes ~6 per uplink, ~10^4 uplinks/s)."""

    end_s: int  # end of the hour, Unix seconds
    index: float
    reverse_volume: float | None
    battery: float | None
    alarms: tuple[bool, ...] | None  # in ALARM_BITS order; on the newest hour only


Codec = Callable[[bytes], list[HourValues]]
_HEAD = struct.Struct(">BIBI")
_TAIL = struct.Struct(">IBB")
MAX_HOURS = 12
# alarm byte -> the bits in ALARM_BITS order (undefined bits are refused before)
_ALARMS = [tuple(bool(b >> i & 1) for i in range(len(ALARM_BITS)))
           for b in range(1 << len(ALARM_BITS))]  # fmt: skip


def decode_hourly_v1(data: bytes) -> list[HourValues]:
    """Decode an ``akita-hourly-v1`` payload (see the module docstring)."""
    if len(data) < _HEAD.size + _TAIL.size:
        raise CodecError(f"payload: {len(data)} bytes, akita-hourly-v1 needs at least 16")
    fmt, first_end, n, index_l = _HEAD.unpack_from(data)
    if fmt != 0x01:
        raise CodecError(f"byte 0 (format): 0x{fmt:02x}, akita-hourly-v1 is 0x01")
    if not 1 <= n <= MAX_HOURS:
        raise CodecError(f"byte 5 (hours): {n}, must be 1..{MAX_HOURS}")
    if first_end % HOUR_S:
        raise CodecError(f"bytes 1-4 (first hour end): {first_end} is not on the hour")
    want = _HEAD.size + 2 * (n - 1) + _TAIL.size
    if len(data) != want:
        raise CodecError(f"payload: {len(data)} bytes, {n} hours need {want}")
    deltas = struct.unpack_from(f">{n - 1}H", data, _HEAD.size)
    reverse_l, battery, bits = _TAIL.unpack_from(data, _HEAD.size + 2 * (n - 1))
    if battery > 100:
        raise CodecError(f"battery byte: {battery}, must be 0..100 (%)")
    if bits >> len(ALARM_BITS):
        raise CodecError(f"alarm byte: 0x{bits:02x} sets undefined bits")
    litres = list(accumulate(deltas, initial=index_l))
    out = [HourValues(first_end + i * HOUR_S, litres[i] / 1000.0, None, None, None)
           for i in range(n - 1)]  # fmt: skip
    # reverse volume, battery and alarms are the uplink's state: on its newest hour only
    out.append(HourValues(first_end + (n - 1) * HOUR_S, litres[-1] / 1000.0, reverse_l / 1000.0,
                          float(battery), _ALARMS[bits]))  # fmt: skip
    return out


# device profile name (the meter model) -> codec
CODECS: dict[str, Codec] = {"akita-hourly-v1": decode_hourly_v1}


def codec_for(profile: str) -> Codec:
    """The codec of a device profile; :class:`CodecError` names the known ones."""
    try:
        return CODECS[profile]
    except KeyError:
        known = ", ".join(sorted(CODECS))
        raise CodecError(
            f"deviceInfo.deviceProfileName: no codec for {profile!r} (known: {known})"
        ) from None
