"""The detector interface shared by every domain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from schemas.alert import Severity
from schemas.wire import DeviceInfo, Reading


@dataclass(frozen=True, slots=True)
class Detection:
    """One detector's verdict about one device at one time.

    ``kind`` plus ``device_id`` is the alert dedup key. ``active=False`` means the
    condition cleared (the alert lifecycle applies its hold-off before resolving).
    """

    detector: str
    kind: str
    device_id: str
    ts: datetime
    active: bool
    severity: Severity = Severity.MINOR
    title: str = ""
    message: str = ""
    value: float | None = None
    public: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


# What detectors know about a device beyond its readings (from the registry).
DeviceContext = Mapping[str, DeviceInfo]


class Detector(Protocol):
    name: str

    def feed(self, readings: Sequence[Reading], devices: DeviceContext) -> list[Detection]:
        """Consume readings in time order; return what changed."""
        ...
