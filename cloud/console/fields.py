"""Which fields of a device kind are numeric, with their units, and which one a chart
of an alert shows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from schemas.devices import field_unit, values_model
from schemas.kinds import KINDS, UnknownKind


def numeric_fields(kind: str) -> list[tuple[str, str]]:
    """(field, unit) of the numeric fields of ``kind``; [] for an unknown kind."""
    try:
        model = values_model(kind)
    except UnknownKind:  # a device registered under a kind this process does not load
        return []
    out = []
    for name, info in model.model_fields.items():
        types = set(get_args(info.annotation))
        if {int, float} & types and bool not in types:
            out.append((name, field_unit(kind, name) or ""))
    return out


def chart_field(kind: str | None, extra: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (field, unit) to chart for an alert of a device of ``kind``."""
    fields = dict(numeric_fields(kind or ""))
    wanted = extra.get("field")
    if isinstance(wanted, str) and wanted in fields:
        return wanted, fields[wanted]
    # the quantity a kind's alerts are usually about is its declared headline
    declared = KINDS.get(kind or "")
    primary = declared.headline if declared is not None else None
    if primary is not None and primary in fields:
        return primary, fields[primary]
    return next(iter(fields.items()), None)
