"""One integration message -> line protocol, a dead letter, a flag, or nothing.

Trust: the topic prefix says which network server sent the event (the broker lets a
network server's user publish only under its own prefix), and the registry says which
devEuis that network server owns, with their kind. The payload's own claims (its
``deviceInfo``, its tenant) are never trusted for ownership; a payload naming another
devEui than its topic is dead-lettered.

Speed (the worker's hot path, ~10^4 uplinks/s): the kind's values model declares every
field's type and bounds; :func:`mirror_bounds` reads them once, and an uplink's fields
are checked against them once per uplink, not through a pydantic model per hour. The
check is a filter, never the authority: anything it does not accept goes through the
values model hour by hour, as before, which either accepts it or raises the error that
names the field and the value. The lines are written by a template for the hours that
carry only the index and by the kind's generated formatter for the newest hour, byte for
byte what :meth:`cloud.ingest.encode.Encoder.reading_line` writes (tested).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import annotated_types as at
import msgspec
from pydantic import BaseModel, ValidationError

from cloud.ingest.encode import FORMATS, Encoder
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
# (type, lowest, highest) of one field; bounds are inclusive (pydantic's ge/le)
Bounds = tuple[type, float, float]
_ENC = msgspec.json.encode
# an hour that carries only its index: what FORMATS[kind].fields writes for it
_INDEX_LINE = b"%bindex=%b %d"


def mirror_bounds(model: type[BaseModel]) -> dict[str, Bounds] | None:
    """Every field's type and bounds, when the model declares nothing else: each field
    an optional float bounded by ``ge``/``le`` (or unbounded) or an optional bool, no
    validators. None otherwise: such a kind's values take the pydantic path."""
    decorators = model.__pydantic_decorators__
    if (decorators.validators or decorators.field_validators or decorators.root_validators
            or decorators.model_validators or model.model_config.get("strict")):  # fmt: skip
        return None
    out: dict[str, Bounds] = {}
    for name, info in model.model_fields.items():
        if info.annotation == (bool | None) and not info.metadata:
            out[name] = (bool, 0.0, 0.0)
            continue
        if info.annotation != (float | None):
            return None
        lo, hi = -math.inf, math.inf
        for m in info.metadata:
            if type(m) is at.Ge:
                lo = float(m.ge)  # type: ignore[arg-type]
            elif type(m) is at.Le:
                hi = float(m.le)  # type: ignore[arg-type]
            else:
                return None
        out[name] = (float, lo, hi)
    return out


def fields_ok(bounds: dict[str, Bounds], fields: dict[str, Any]) -> bool:
    """True when the values model surely accepts ``fields`` and keeps them as they are
    (a float stays that float, a bool that bool). False means "ask the model", not
    "invalid": an int where a float is declared, say, the model would take."""
    for name, v in fields.items():
        spec = bounds.get(name)
        if spec is None:
            return False  # not a field of the kind: the model forbids extras
        if v is None:
            continue
        typ, lo, hi = spec
        if typ is float:
            if type(v) is not float or not lo <= v <= hi:  # NaN fails both
                return False
        elif type(v) is not typ:
            return False
    return True


def _indices_ok(bounds: dict[str, Bounds], hours: list[HourValues]) -> bool:
    """:func:`fields_ok` for the index of every hour (the older hours carry only it)."""
    spec = bounds.get("index")
    if spec is None or spec[0] is not float:
        return False
    lo, hi = spec[1], spec[2]
    for h in hours:
        x = h.index
        if type(x) is not float or not lo <= x <= hi:
            return False
    return True


_METER_BOUNDS = mirror_bounds(KINDS[METER_KIND].values)
_ABSENT = dict.fromkeys(KINDS[METER_KIND].values.model_fields)


@dataclass
class Outcome:
    """What one message gave: lines to write, or why it was refused or flagged."""

    lines: list[bytes] = field(default_factory=list)
    readings: list[tuple[str, str, datetime, Any]] = field(default_factory=list)
    dead: str | None = None  # refused: nothing of it is stored
    flag: str | None = None  # stored, but someone should look
    verdict: str = "ignored"  # new, duplicate, counter_back, join, ignored, dead


class Handler:
    """Not thread-safe: the worker's network thread calls :meth:`handle` in order.

    ``readings``: also give each stored hour as (device, kind, hour end, values model)
    in :attr:`Outcome.readings` (for the detection hook); without it only lines."""

    def __init__(self, registry: Registry, dedupe: Dedupe | None = None, *,
                 readings: bool = True) -> None:  # fmt: skip
        self.registry = registry
        self.encoder = Encoder(registry)
        self.dedupe = dedupe or Dedupe()
        self.readings = readings
        # devEui -> (network server, b"measurement,tags "): dropped when the registry
        # (tags, owner) changes, as the encoder's own cache
        self._prefixes: dict[str, tuple[str, bytes]] = {}
        self._version = -1

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
        newest = _newest_fields(up, hours[-1])
        # the checks the values model would make, once per uplink; anything the check
        # does not surely accept goes through the model hour by hour (which names it)
        fast = (_METER_BOUNDS is not None and fields_ok(_METER_BOUNDS, newest)
                and _indices_ok(_METER_BOUNDS, hours))  # fmt: skip
        models = None if fast else [self._values(kind, up, h, i == len(hours) - 1, newest)
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
        if models is None:
            prefix = self._prefix(up.dev_eui, kind, ns)
            lines = out.lines
            for h in hours[:-1]:
                lines.append(_INDEX_LINE % (prefix, _ENC(h.index), h.end_s * 1000))
            # the formatter reads attributes: every field of the kind, None when absent
            values = SimpleNamespace(**(_ABSENT | newest))
            line = FORMATS[kind].line(values, prefix, hours[-1].end_s * 1000)
            if line is not None:  # never None: the newest hour has its index
                lines.append(line)
            if self.readings:
                models = [self._values(kind, up, h, i == len(hours) - 1, newest)
                          for i, h in enumerate(hours)]  # fmt: skip
        else:
            for h, values in zip(hours, models, strict=True):
                line_s = self.encoder.reading_line(up.dev_eui, kind, ns, values, h.end_s * 1000)
                out.lines.append(line_s.encode())
        if self.readings and models is not None:
            for h, values in zip(hours, models, strict=True):
                out.readings.append(
                    (up.dev_eui, kind, datetime.fromtimestamp(h.end_s, UTC), values)
                )
        return out

    def _prefix(self, dev_eui: str, kind: str, ns: str) -> bytes:
        """The device's ``measurement,tags `` as the encoder writes it, cached."""
        if self.registry.version != self._version:
            self._prefixes.clear()
            self._version = self.registry.version
        hit = self._prefixes.get(dev_eui)
        if hit is None or hit[0] != ns:
            prefix = self.encoder._prefix_for(dev_eui, kind, ns).encode()
            hit = self._prefixes[dev_eui] = (ns, prefix)
        return hit[1]

    @staticmethod
    def _values(kind: str, up: Uplink, h: HourValues, last: bool, newest: dict[str, Any]) -> Any:
        fields: dict[str, Any] = newest if last else {"index": h.index}
        try:
            return KINDS[kind].values(**fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise CodecError(
                f"{kind}.{where}: {first.get('input')!r}: {first['msg']} "
                f"(devEui {up.dev_eui}, profile {up.profile!r})"
            ) from None


def _newest_fields(up: Uplink, h: HourValues) -> dict[str, Any]:
    """The newest hour's fields: radio and state belong to the uplink, so to its newest
    hour (the older hours carry their index only)."""
    fields: dict[str, Any] = {"index": h.index, "reverse_volume": h.reverse_volume,
                              "battery": h.battery, "rssi": up.rssi, "snr": up.snr}  # fmt: skip
    if h.alarms is not None:
        fields.update(zip(ALARM_BITS, h.alarms, strict=True))
    return fields


def _check_times(hours: list[HourValues], now: datetime) -> None:
    now_s = now.timestamp()
    for h in hours:
        if h.end_s > now_s + MAX_FUTURE_S:
            raise CodecError(f"hour end {datetime.fromtimestamp(h.end_s, UTC).isoformat()} is "
                             "ahead of the ingest's clock (meter clock wrong?)")  # fmt: skip
        if h.end_s < now_s - MAX_AGE_S:
            raise CodecError(f"hour end {datetime.fromtimestamp(h.end_s, UTC).isoformat()} is "
                             "older than the raw retention")  # fmt: skip
