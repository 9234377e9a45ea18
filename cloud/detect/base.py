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


def restore_slots(obj: object, state: tuple[None, dict[str, Any]], **added: Any) -> None:
    """``__setstate__`` of a slotted per-device state: detector state is pickled into
    checkpoints (``cloud/detect/checkpoint.py``), and one written before a slot existed
    restores without it; ``added`` gives each such slot its starting value (else the
    first reading after an upgrade raises AttributeError)."""
    for name, value in {**added, **state[1]}.items():
        setattr(obj, name, value)
