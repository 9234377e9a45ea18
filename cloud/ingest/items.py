"""Item-level checks of a telemetry batch: one bad reading never costs the others.

- :func:`salvage`: a batch that fails validation only in some readings (an unknown
  kind, an unknown field, a value out of range) keeps its good readings; each bad one
  is named with the reason, for the dead letter. An envelope error (gateway id, seq,
  sent_at) still refuses the whole batch.
- :class:`ExtraCheck`: a reading's extra fields and quality flags must be the ones its
  device declares (``DeviceInfo.extra_fields``, from ``akita cloud device import`` or the
  gateway's retained meta): a declared number within its min/max, a declared flag a
  boolean; a quality flag names a field of the kind or a declared extra field. What is
  not is taken out of the reading (the rest of it is stored) and named.

Both are off the hot path: ``salvage`` runs only when the batch failed to decode, and
``ExtraCheck`` costs one attribute test per reading unless a reading carries extras.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from pydantic import ValidationError

from cloud.registry import Registry
from schemas import Batch, WireError
from schemas.codec import describe
from schemas.kinds import KINDS
from schemas.wire import QUALITY_OK, reading_adapter

# name -> (min, max) for a number, None for a flag
Declared = Mapping[str, tuple[float, float] | None]
MAX_NAMED = 5  # bad items named in a dead letter; the rest are counted


class _Loose(msgspec.Struct):
    readings: list[msgspec.Raw] = []


def salvage(payload: bytes, error: WireError) -> tuple[Batch, list[str]]:
    """The batch with only its valid readings, and a reason per invalid one; re-raises
    ``error`` when the envelope itself is bad (or nothing can be parsed)."""
    if not (error.field or "").startswith("readings."):
        raise error
    try:
        loose = msgspec.json.decode(payload, type=_Loose)
        envelope = msgspec.json.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        raise error from None
    good: list[Any] = []
    reasons: list[str] = []
    for i, raw in enumerate(loose.readings):
        try:
            good.append(reading_adapter.validate_json(bytes(raw), strict=True))
        except ValidationError as exc:
            reasons.append(f"readings.{i}.{describe(exc, limit=2)}")
    envelope["readings"] = []
    try:
        batch = Batch.model_validate_json(msgspec.json.encode(envelope), strict=True)
    except ValidationError:
        raise error from None
    return batch.model_copy(update={"readings": good}), reasons


def _declared(info: Any) -> dict[str, tuple[float, float] | None]:
    out: dict[str, tuple[float, float] | None] = {}
    for x in getattr(info, "extra_fields", None) or ():
        out[x.name] = None if x.min is None or x.max is None else (x.min, x.max)
    return out


class ExtraCheck:
    """Checks extras and quality flags against the device's declaration (see module doc)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._declared: dict[str, dict[str, tuple[float, float] | None]] = {}
        self._version = -1

    def declared(self, device_id: str) -> Declared:
        if self.registry.version != self._version:
            self._declared.clear()
            self._version = self.registry.version
        found = self._declared.get(device_id)
        if found is None:
            found = self._declared[device_id] = _declared(self.registry.device(device_id))
        return found

    def check(self, batch: Batch | Any) -> tuple[Batch | Any, list[str]]:
        """The batch with every reading's undeclared extras and flags taken out, and why."""
        readings = batch.readings
        if all(r.extra is None and r.quality is None for r in readings):
            return batch, []
        reasons: list[str] = []
        kept = []
        changed = False
        for i, r in enumerate(readings):
            if r.extra is None and r.quality is None:
                kept.append(r)
                continue
            extra, quality, why = self._screen(r)
            if not why:
                kept.append(r)
                continue
            changed = True
            reasons.extend(f"readings.{i}.{w}" for w in why)
            if extra or quality or _has_values(r):
                kept.append(_replace(r, extra=extra or None, quality=quality or None))
        if not changed:
            return batch, []
        return _replace(batch, readings=kept), reasons

    def _screen(self, r: Any) -> tuple[dict[str, Any], dict[str, str], list[str]]:
        declared = self.declared(r.device_id)
        why: list[str] = []
        extra: dict[str, Any] = {}
        for name, value in (r.extra or {}).items():
            problem = _extra_problem(name, value, declared)
            if problem is None:
                extra[name] = value
            else:
                why.append(f"extra.{name}: {problem} (got {value!r})")
        standard = KINDS[r.kind].values.model_fields
        quality: dict[str, str] = {}
        for name, reason in (r.quality or {}).items():
            if name not in standard and name not in declared:
                why.append(
                    f"quality.{name}: {r.device_id!r} ({r.kind}) has no field {name!r} "
                    f"(got {reason!r})"
                )
            elif reason != QUALITY_OK and (
                getattr(r.values, name, None) is not None or name in extra
            ):
                why.append(f"quality.{name}: flagged untrusted but also sent as a value")
            else:
                quality[name] = reason
        return extra, quality, why


def _extra_problem(name: str, value: Any, declared: Declared) -> str | None:
    if name not in declared:
        return "not a declared extra field of the device (DeviceInfo.extra_fields)"
    bounds = declared[name]
    is_flag = value is True or value is False
    if bounds is None:
        return None if is_flag else "declared without min/max: a flag, true or false"
    if is_flag:
        return f"declared as a number in {bounds[0]:g}..{bounds[1]:g}, not a flag"
    if not bounds[0] <= value <= bounds[1]:
        return f"out of its declared range {bounds[0]:g}..{bounds[1]:g}"
    return None


def _has_values(r: Any) -> bool:
    return any(getattr(r.values, k) is not None for k in KINDS[r.kind].values.model_fields)


def _replace(obj: Any, **changes: Any) -> Any:
    if isinstance(obj, msgspec.Struct):
        return msgspec.structs.replace(obj, **changes)
    return obj.model_copy(update=changes)
