"""What every device model shares: identity, outages and the sample interface."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Window:
    """A time window ``[start, end)``; ``end=None`` means until the end of the run."""

    start: float
    end: float | None = None

    def covers(self, t: float) -> bool:
        return t >= self.start and (self.end is None or t < self.end)


@dataclass
class DeviceModel:
    """Base of all models. ``outages`` make the device stop answering (offline)."""

    device_id: str
    key: int
    outages: list[Window] = field(default_factory=list)

    def online(self, t: float) -> bool:
        return not any(w.covers(t) for w in self.outages)

    def sample(self, t: float) -> dict[str, Any]:
        raise NotImplementedError
