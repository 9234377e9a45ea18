"""ChirpStack v4 MQTT integration: topics and the ``up`` / ``join`` event JSON.

Facts (ChirpStack v4 ``integration.proto`` and its MQTT integration docs): events go to
``application/<application_id>/device/<dev_eui>/event/<event>``, JSON with the proto3
lowerCamelCase names; an ``up`` event has ``deduplicationId``, ``time``, ``deviceInfo``
(``devEui``, ``deviceProfileName``, ...), ``fCnt``, ``fPort``, ``data`` (base64) and one
``rxInfo`` entry per radio gateway that heard the frame (``rssi``, ``snr``).

Each network server is configured (``[integration.mqtt] event_topic``) to publish under
its own prefix ``lpwa/<network server id>/``, and its broker user may publish only
there (``deploy/mosquitto/roles``): the prefix, checked by the broker, says which
network server sent an event, so the registry can tell whose meter it is.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime

import msgspec

PREFIX = "lpwa"
SUBSCRIPTION = f"{PREFIX}/+/application/+/device/+/event/+"
_TOPIC = re.compile(
    r"^lpwa/(?P<ns>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})/application/(?P<app>[^/]{1,64})"
    r"/device/(?P<eui>[^/]{1,64})/event/(?P<event>[a-z]{1,16})\Z"
)
DEV_EUI = re.compile(r"^[0-9a-f]{16}\Z")


class EventError(ValueError):
    """An integration message that is not a usable event; ``str()`` names the field."""


@dataclass(frozen=True, slots=True)
class EventTopic:
    network_server: str
    application_id: str
    dev_eui: str
    event: str


def topic(ns: str, application_id: str, dev_eui: str, event: str = "up") -> str:
    return f"{PREFIX}/{ns}/application/{application_id}/device/{dev_eui}/event/{event}"


def parse_topic(name: str) -> EventTopic:
    m = _TOPIC.match(name)
    if m is None:
        raise EventError(
            f"topic: {name[:200]!r} is not lpwa/<ns>/application/<id>/device/<devEui>/event/<event>"
        )
    if not DEV_EUI.match(m["eui"]):
        raise EventError(f"topic devEui: {m['eui']!r} is not 16 lower-case hex digits")
    return EventTopic(m["ns"], m["app"], m["eui"], m["event"])


class _DeviceInfo(msgspec.Struct):
    devEui: str
    deviceProfileName: str = ""
    applicationId: str = ""


class _RxInfo(msgspec.Struct):
    gatewayId: str = ""
    rssi: float | None = None
    snr: float | None = None


class _Up(msgspec.Struct):
    deduplicationId: str
    time: datetime
    deviceInfo: _DeviceInfo
    fCnt: int = 0
    fPort: int = 0
    data: str = ""
    rxInfo: list[_RxInfo] = []


class _Join(msgspec.Struct):
    deviceInfo: _DeviceInfo
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Uplink:
    dedup_id: str
    received: datetime  # when the network server got it (not the readings' time)
    dev_eui: str
    profile: str
    application_id: str
    f_cnt: int
    data: bytes
    rssi: float | None  # best of the gateways that heard it
    snr: float | None
    gateways: int


_up = msgspec.json.Decoder(_Up)
_join = msgspec.json.Decoder(_Join)


def parse_up(payload: bytes, where: EventTopic) -> Uplink:
    """An ``up`` event; :class:`EventError` names what is missing or wrong."""
    try:
        up = _up.decode(payload)
    except msgspec.DecodeError as exc:
        raise EventError(f"up event: {exc}") from None
    _same_device(up.deviceInfo, where)
    if up.time.tzinfo is None:
        raise EventError(f"time: {up.time.isoformat()!r} has no UTC offset")
    if not 0 <= up.fCnt < 2**32:
        raise EventError(f"fCnt: {up.fCnt} is not a 32-bit frame counter")
    try:
        data = base64.b64decode(up.data, validate=True)
    except (binascii.Error, ValueError):
        raise EventError(f"data: {up.data[:60]!r} is not base64") from None
    rssi = [r.rssi for r in up.rxInfo if r.rssi is not None]
    snr = [r.snr for r in up.rxInfo if r.snr is not None]
    return Uplink(up.deduplicationId, up.time, where.dev_eui, up.deviceInfo.deviceProfileName,
                  where.application_id, up.fCnt, data, max(rssi, default=None),
                  max(snr, default=None), len(up.rxInfo))  # fmt: skip


def parse_join(payload: bytes, where: EventTopic) -> None:
    """Check a ``join`` event names the device of its topic."""
    try:
        _same_device(_join.decode(payload).deviceInfo, where)
    except msgspec.DecodeError as exc:
        raise EventError(f"join event: {exc}") from None


def _same_device(info: _DeviceInfo, where: EventTopic) -> None:
    if info.devEui.lower() != where.dev_eui:
        raise EventError(f"deviceInfo.devEui: {info.devEui!r} is not the topic's {where.dev_eui!r}")
