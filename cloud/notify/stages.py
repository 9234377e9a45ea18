"""Stages of the public alerts, in order of danger.

Flood (冠水): caution 注意 / warning 警戒 / danger 危険 (default depths 10 / 20 / 30 cm).
Heat (indoor WBGT, Ministry of the Environment): warning 警戒 (25) / severe_warning
厳重警戒 (28) / danger 危険 (31). The labels themselves live in the templates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.alert import Alert, Severity

STAGES: dict[str, tuple[str, ...]] = {
    "flood": ("caution", "warning", "danger"),
    "heat": ("warning", "severe_warning", "danger"),
}
DEFAULT_FLOOD_DEPTHS_CM = (10.0, 20.0, 30.0)
_HEAT_BY_SEVERITY = {
    Severity.EXTREME: "danger",
    Severity.SEVERE: "severe_warning",
    Severity.MODERATE: "warning",
    Severity.MINOR: "warning",
}


def stage_rank(topic: str | None, stage: str | None) -> int:
    """1.. for a known stage, 0 when unknown."""
    order = STAGES.get(topic or "", ())
    return order.index(stage) + 1 if stage in order else 0


def stage_of(topic: str | None, alert: Alert, extra: Mapping[str, Any] | None) -> str | None:
    """The stage an alert is at: the detector's ``extra["stage"]``, else derived from the
    depth (flood, default depths) or the severity (heat)."""
    stage = (extra or {}).get("stage")
    if isinstance(stage, str) and stage:
        return stage
    if topic == "flood" and alert.value is not None:
        found = None
        for name, depth in zip(STAGES["flood"], DEFAULT_FLOOD_DEPTHS_CM, strict=True):
            if alert.value >= depth:
                found = name
        return found
    if topic == "heat":
        return _HEAT_BY_SEVERITY[alert.severity]
    return None
