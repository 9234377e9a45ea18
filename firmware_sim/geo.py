"""Small-area geometry around Akita City (equirectangular metres; errors < 0.1 % here)."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

LAT0 = 39.72
M_PER_DEG_LAT = 111_132.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT0))


def to_xy(lat: float, lon: float) -> tuple[float, float]:
    return ((lon - 140.1) * M_PER_DEG_LON, (lat - LAT0) * M_PER_DEG_LAT)


def to_latlon(x: float, y: float) -> tuple[float, float]:
    return (LAT0 + y / M_PER_DEG_LAT, 140.1 + x / M_PER_DEG_LON)


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    ax, ay = to_xy(*a)
    bx, by = to_xy(*b)
    return math.hypot(bx - ax, by - ay)


@dataclass
class Polyline:
    """A path of (lat, lon) points with arc-length lookup."""

    points: list[tuple[float, float]]
    _xy: list[tuple[float, float]] = field(default_factory=list, repr=False)
    _cum: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._xy = [to_xy(*p) for p in self.points]
        self._cum = [0.0]
        for (x1, y1), (x2, y2) in zip(self._xy, self._xy[1:], strict=False):
            self._cum.append(self._cum[-1] + math.hypot(x2 - x1, y2 - y1))

    @property
    def length(self) -> float:
        return self._cum[-1]

    def at(self, s: float) -> tuple[float, float, float, float, float]:
        """``(x, y, heading_deg, ux, uy)`` at arc length ``s`` (clamped); heading from north."""
        s = min(max(s, 0.0), self.length)
        i = min(max(bisect.bisect_right(self._cum, s) - 1, 0), len(self._xy) - 2)
        (x1, y1), (x2, y2) = self._xy[i], self._xy[i + 1]
        seg = self._cum[i + 1] - self._cum[i]
        f = 0.0 if seg == 0 else (s - self._cum[i]) / seg
        ux, uy = ((x2 - x1) / seg, (y2 - y1) / seg) if seg else (0.0, 1.0)
        heading = math.degrees(math.atan2(ux, uy)) % 360.0
        return x1 + f * (x2 - x1), y1 + f * (y2 - y1), heading, ux, uy

    def distance_to(self, lat: float, lon: float) -> float:
        """Shortest distance from a point to the path, metres."""
        px, py = to_xy(lat, lon)
        best = math.inf
        for (x1, y1), (x2, y2) in zip(self._xy, self._xy[1:], strict=False):
            dx, dy = x2 - x1, y2 - y1
            L2 = dx * dx + dy * dy
            f = 0.0 if L2 == 0 else max(0.0, min(1.0, ((px - x1) * dx + (py - y1) * dy) / L2))
            best = min(best, math.hypot(px - x1 - f * dx, py - y1 - f * dy))
        return best
