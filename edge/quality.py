"""Whether a read value can be trusted, and a rate-limited log of the fields that cannot.

A meter that loses its signal often keeps answering with NaN, +Inf or a flow of
1e38, or a good-looking flow with an error bit set. Such a value is never treated as a
good number at the edge: ``akita edge check`` marks it red, and the agent publishes a
quality flag for the field with the reason instead of the number (the cloud raises
``bad_value`` when it lasts) and logs it, per field, at most once per ``LOG_EVERY_S``,
so a field missing for hours keeps saying so in the journal. An extra field declared
with ``invalidates`` (an error bit) flags the fields it names while it is set.

A field's range is the device kind's (``schemas.devices``, ``ge``/``le``) or, for a
diagnostic field, the ``min``/``max`` of its ``[[devices.extra_fields]]`` entry.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import annotated_types as at

from edge.config import Device
from schemas.devices import values_model

log = logging.getLogger(__name__)

LOG_EVERY_S = 600.0
Limits = dict[str, tuple[float | None, float | None]]


def limits(device: Device) -> Limits:
    """Field -> (lowest, highest) allowed, None where a side is open."""
    out: Limits = {}
    for name, info in values_model(device.kind).model_fields.items():
        lo: float | None = None
        hi: float | None = None
        for m in info.metadata:
            if isinstance(m, at.Ge | at.Gt):
                lo = float(m.ge if isinstance(m, at.Ge) else m.gt)  # type: ignore[arg-type]
            elif isinstance(m, at.Le | at.Lt):
                hi = float(m.le if isinstance(m, at.Le) else m.lt)  # type: ignore[arg-type]
        out[name] = (lo, hi)
    for extra in device.extra_fields:
        out[extra.name] = (extra.min, extra.max)
    return out


def problem(value: Any, lo: float | None, hi: float | None) -> str | None:
    """Why ``value`` cannot be trusted, or None. Booleans and strings are not ranged."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if math.isnan(value):
        return "not a number"
    if math.isinf(value):
        return "infinite"
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return f"out of range ({_g(lo)}..{_g(hi)})"
    return None


def _g(bound: float | None) -> str:
    return "" if bound is None else f"{bound:g}"


def screen(values: dict[str, Any], bounds: Limits) -> tuple[dict[str, Any], dict[str, str]]:
    """(the values that can be trusted, field -> reason for those that cannot)."""
    good: dict[str, Any] = {}
    bad: dict[str, str] = {}
    for name, value in values.items():
        reason = problem(value, *bounds.get(name, (None, None)))
        if reason is None:
            good[name] = value
        else:
            bad[name] = reason
    return good, bad


def invalidated(device: Device, values: dict[str, Any]) -> dict[str, str]:
    """Field -> "device error <flag>" for the fields a set error flag or code invalidates."""
    out: dict[str, str] = {}
    for extra in device.extra_fields:
        raised = values.get(extra.name)
        if not extra.invalidates or raised is None or raised is False or raised == 0:
            continue
        if isinstance(raised, float) and math.isnan(raised):
            continue  # an unreadable error code says nothing
        for target in extra.invalidates:
            out.setdefault(target, f"device error {extra.name}")
    return out


def judge(
    device: Device, values: dict[str, Any], bounds: Limits
) -> tuple[dict[str, Any], dict[str, str]]:
    """:func:`screen`, and the fields an error flag invalidates taken out with the reason."""
    good, bad = screen(values, bounds)
    for name, why in invalidated(device, values).items():
        if name in good:
            del good[name]
            bad[name] = why
    return good, bad


class FieldLog:
    """One warning per device, field and event at most every ``every_s`` seconds."""

    def __init__(self, every_s: float = LOG_EVERY_S) -> None:
        self.every_s = every_s
        self._last: dict[tuple[str, str, str], float] = {}

    def report(
        self,
        event: str,
        device_id: str,
        problems: dict[str, str],
        now: float,
        values: dict[str, Any] | None = None,
    ) -> None:
        for name, reason in problems.items():
            key = (event, device_id, name)
            last = self._last.get(key)
            if last is not None and now - last < self.every_s:
                continue
            self._last[key] = now
            shown = "" if values is None else f" value={values.get(name)!r}"
            log.warning("%s device=%s field=%s%s reason=%s", event, device_id, name, shown, reason)
