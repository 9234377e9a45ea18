"""``bad_value``: a field that has had no valid value for longer than ``after_s``.

A gateway never sends an untrusted value as a number: it sends a quality flag for the
field with the reason (NaN, infinite, out of range, a device error bit) and ``ok`` when
the field is trusted again (a value for the field clears it too). One alert per device
names every field that has been invalid for too long; it clears when all are valid.
Any kind, any field (its own or a declared extra field): nothing here is per kind.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cloud.detect.base import Detection
from cloud.detect.flags import Flags
from schemas.alert import Severity
from schemas.wire import QUALITY_OK


class QualityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bad_value_after_s: float = Field(
        default=900.0, gt=0, description="A field invalid this long raises bad_value"
    )


class BadValueDetector:
    """Tracks, per device, since when each flagged field has had no valid value."""

    name = "common.bad_value"
    KIND = "bad_value"

    def __init__(self, config: QualityConfig) -> None:
        self.cfg = config
        self.flags = Flags(self.name)
        # device -> field -> (first invalid time, latest reason)
        self.invalid: dict[str, dict[str, tuple[datetime, str]]] = {}
        self.raised: dict[str, frozenset[str]] = {}

    def feed_one(self, out: list[Detection], r: Any) -> None:
        """A reading with quality flags, or of a device with a field invalid so far."""
        fields = self.invalid.get(r.device_id)
        for name, reason in (r.quality or {}).items():
            if reason == QUALITY_OK:
                if fields is not None:
                    fields.pop(name, None)
            else:
                fields = self.invalid.setdefault(r.device_id, {})
                since = fields.get(name, (r.ts, reason))[0]
                fields[name] = (since, reason)
        if fields:
            for name in [n for n in fields if _valued(r, n)]:
                del fields[name]
        self._judge(out, r.device_id, r.ts)

    def tick(self, now: datetime) -> list[Detection]:
        out: list[Detection] = []
        for device_id in list(self.invalid):
            self._judge(out, device_id, now)
        return out

    def _judge(self, out: list[Detection], device_id: str, now: datetime) -> None:
        fields = self.invalid.get(device_id) or {}
        late = timedelta(seconds=self.cfg.bad_value_after_s)
        bad = {n: v for n, v in fields.items() if now - v[0] >= late}
        was = self.raised.get(device_id, frozenset())
        if frozenset(bad) == was:
            if not fields:
                self.invalid.pop(device_id, None)
            return
        if bad:
            self.raised[device_id] = frozenset(bad)
            worst = min(v[0] for v in bad.values())
            names = ", ".join(sorted(bad))
            self.flags.set(
                out,
                device_id,
                self.KIND,
                now,
                True,
                severity=Severity.MODERATE,
                title=f"No valid value: {names}",
                message="; ".join(
                    f"{n}: {bad[n][1]} since {bad[n][0]:%Y-%m-%d %H:%M} UTC" for n in sorted(bad)
                ),
                value=(now - worst).total_seconds(),
                extra={"fields": sorted(bad)},
                force=True,
            )
        else:
            self.raised.pop(device_id, None)
            self.flags.set(out, device_id, self.KIND, now, False, title="Valid values again")
        if not fields:
            self.invalid.pop(device_id, None)


def _valued(r: Any, name: str) -> bool:
    if getattr(r.values, name, None) is not None:
        return True
    extra = r.extra
    return extra is not None and name in extra
