"""warning_sign -> the lamp check: a lamp commanded on that draws no current is a fault.

The sign's controller reports on change, so one reading may carry only the coil or only
the current; the last known value of each is kept per sign. A lamp is believed lit only
when its current says so (:func:`schemas.kinds.warning_sign.lamp_lit`): the coil says
what the controller was told, the current says whether anyone on the road can see it.
The alert is ``sign_lamp_fault`` (severe: the sign is the only warning at the dip), and
it resolves once the lamp draws current again or is switched off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cloud.detect.base import Detection
from cloud.detect.flags import Flags
from cloud.detect.parts import DetectorPart, Route, register
from schemas.alert import Severity
from schemas.kinds.warning_sign import LIT_MIN_A, lamp_lit

ALERT = "sign_lamp_fault"


@dataclass
class _Sign:
    lamp_on: bool | None = None
    current: float | None = None


@dataclass
class SignWatch:
    """Per-sign last known coil and current, and the open faults (checkpointed)."""

    flags: Flags = field(default_factory=lambda: Flags("warning_sign"))
    signs: dict[str, _Sign] = field(default_factory=dict)

    def feed(self, out: list[Detection], device: str, ts: datetime, values: Any) -> None:
        sign = self.signs.setdefault(device, _Sign())
        if values.lamp_on is not None:
            sign.lamp_on = values.lamp_on
        if values.lamp_current is not None:
            sign.current = values.lamp_current
        if sign.lamp_on is None or sign.current is None:
            return  # not judged until both are known
        dark = bool(sign.lamp_on) and lamp_lit(sign.current) is False
        self.flags.set(
            out,
            device,
            ALERT,
            ts,
            dark,
            severity=Severity.SEVERE,
            title="Warning sign lamp commanded on but not lit",
            message=f"lamp on, current {sign.current:.2f} A (lit needs {LIT_MIN_A} A or more)",
            value=sign.current,
            extra={"lamp_on": sign.lamp_on, "lamp_current": sign.current},
        )


def _route(engine: Any) -> Route:
    watch: SignWatch = engine.plugins.setdefault("warning_sign", SignWatch())

    def route(out: list[Detection], r: Any, info: Any) -> None:
        watch.feed(out, r.device_id, r.ts, r.values)

    return route


PART = register(DetectorPart("warning_sign", _route, alerts=(ALERT,)))
