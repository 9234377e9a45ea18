"""One integration message -> line protocol, a dead letter, a flag, or nothing.

Trust: the topic prefix says which network server sent the event (the broker lets a
network server's user publish only under its own prefix), and the registry says which
devEuis that network server owns, with their kind. The payload's own claims (its
``deviceInfo``, its tenant) are never trusted for ownership; a payload naming another
devEui than its topic is dead-lettered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from cloud.ingest.encode import Encoder
from cloud.lpwa import chirpstack
from cloud.lpwa.chirpstack import EventError, EventTopic, Uplink
from cloud.lpwa.codecs import ALARM_BITS, CodecError, HourValues, codec_for
from cloud.lpwa.dedupe import Dedupe, Verdict
from cloud.registry import Registry
from schemas.kinds import KINDS

log = logging.getLogger(__name__)
MAX_FUTURE_S = 300.0  # as the gateway ingest: a meter clock far ahead is wrong
MAX_AGE_S = 89 * 86_400.0  # the raw retention is 90 days
METER_KIND = "water_meter"  # what the codecs decode into


@dataclass
class Outcome:
    """What one message gave: lines to write, or why it was refused or flagged."""

    lines: list[bytes] = field(default_factory=list)
    readings: list[tuple[str, str, datetime, Any]] = field(default_factory=list)
    dead: str | None = None  # refused: nothing of it is stored
    flag: str | None = None  # stored, but someone should look
    verdict: str = "ignored"  # new, duplicate, counter_back, join, ignored, dead


class Handler:
    """Not thread-safe: the worker's network thread calls :meth:`handle` in order."""

    def __init__(self, registry: Registry, dedupe: Dedupe | None = None) -> None:
        self.registry = registry
        self.encoder = Encoder(registry)
        self.dedupe = dedupe or Dedupe()

    def handle(self, topic: str, payload: bytes, now: datetime | None = None) -> Outcome:
        try:
            where = chirpstack.parse_topic(topic)
            if where.event == "join":
                return self._join(where, payload)
            if where.event != "up":
                return Outcome()  # status, log, txack...: nothing the store keeps
            return self._up(where, payload, now or datetime.now(UTC))
        except (EventError, CodecError) as exc:
            return Outcome(dead=str(exc), verdict="dead")

    def _owned_kind(self, where: EventTopic) -> str:
        """The kind the registry gives this devEui under this network server, or raise."""
        kind = self.registry.owned(where.network_server).get(where.dev_eui)
        if kind is not None:
            return kind
        if not self.registry.owned(where.network_server):
            raise EventError(f"unknown_network_server: prefix lpwa/{where.network_server}/ "
                             "owns no registered device")  # fmt: skip
        owner = self.registry.owner_of(where.dev_eui)
        if owner is not None:
            raise EventError(f"not_owner: devEui {where.dev_eui} is registered to network "
                             f"server {owner!r}, not {where.network_server!r}")  # fmt: skip
        raise EventError(f"unknown_device: devEui {where.dev_eui} is not registered")

    def _join(self, where: EventTopic, payload: bytes) -> Outcome:
        self._owned_kind(where)
        chirpstack.parse_join(payload, where)
        self.dedupe.joined(where.dev_eui)
        log.info("lpwa_join ns=%s dev_eui=%s", where.network_server, where.dev_eui)
        return Outcome(verdict="join")

    def _up(self, where: EventTopic, payload: bytes, now: datetime) -> Outcome:
        kind = self._owned_kind(where)
        if kind != METER_KIND:
            raise EventError(f"kind_mismatch: devEui {where.dev_eui} is registered as {kind}, "
                             f"the LPWA codecs decode {METER_KIND}")  # fmt: skip
        up = chirpstack.parse_up(payload, where)
        hours = codec_for(up.profile)(up.data)
        readings = [self._values(kind, up, h, last=i == len(hours) - 1)
                    for i, h in enumerate(hours)]  # fmt: skip
        _check_times(hours, now)
        verdict = self.dedupe.judge(
            up.dedup_id, up.dev_eui, up.f_cnt, up.received.timestamp(), up.data
        )
        if verdict is Verdict.DUPLICATE:
            return Outcome(verdict=verdict.value)
        out = Outcome(verdict=verdict.value)
        if verdict is Verdict.COUNTER_BACK:
            out.flag = (
                f"counter_back: fCnt {up.f_cnt} of devEui {up.dev_eui} is below an earlier "
                "one, received later, without a join (meter reset or replay)"
            )
        ns = where.network_server
        for h, values in zip(hours, readings, strict=True):
            t = h.end_s * 1000
            out.lines.append(self.encoder.reading_line(up.dev_eui, kind, ns, values, t).encode())
            out.readings.append((up.dev_eui, kind, datetime.fromtimestamp(h.end_s, UTC), values))
        return out

    @staticmethod
    def _values(kind: str, up: Uplink, h: HourValues, *, last: bool) -> Any:
        fields: dict[str, Any] = {"index": h.index}
        if last:  # radio and state belong to the uplink, so to its newest hour
            fields.update(reverse_volume=h.reverse_volume, battery=h.battery,
                          rssi=up.rssi, snr=up.snr)  # fmt: skip
            if h.alarms is not None:
                fields.update(zip(ALARM_BITS, h.alarms, strict=True))
        try:
            return KINDS[kind].values(**fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise CodecError(
                f"{kind}.{where}: {first.get('input')!r}: {first['msg']} "
                f"(devEui {up.dev_eui}, profile {up.profile!r})"
            ) from None


def _check_times(hours: list[HourValues], now: datetime) -> None:
    now_s = now.timestamp()
    for h in hours:
        if h.end_s > now_s + MAX_FUTURE_S:
            raise CodecError(f"hour end {datetime.fromtimestamp(h.end_s, UTC).isoformat()} is "
                             "ahead of the ingest's clock (meter clock wrong?)")  # fmt: skip
        if h.end_s < now_s - MAX_AGE_S:
            raise CodecError(f"hour end {datetime.fromtimestamp(h.end_s, UTC).isoformat()} is "
                             "older than the raw retention")  # fmt: skip
