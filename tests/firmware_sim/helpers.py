"""Small readers for the simulator's exports and generated configs (tests only)."""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    try:
        return float(text)
    except ValueError:
        return text


@dataclass
class Dataset:
    series: dict[tuple[str, str], list[tuple[float, Any]]] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    devices: dict[str, Any] = field(default_factory=dict)

    def get(self, device: str, fld: str) -> list[tuple[float, Any]]:
        return self.series.get((device, fld), [])

    def between(self, device: str, fld: str, a: float, b: float) -> list[Any]:
        return [v for t, v in self.get(device, fld) if a <= t < b]

    def label(self, kind: str) -> list[dict[str, Any]]:
        return [x for x in self.labels["labels"] if x["kind"] == kind]


def load(path: Path) -> Dataset:
    series: dict[tuple[str, str], list[tuple[float, Any]]] = defaultdict(list)
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            series[(row["device_id"], row["field"])].append((ts(row["ts"]), value(row["value"])))
    stem = path.name.removesuffix(".csv")
    labels = json.loads((path.parent / f"{stem}.labels.json").read_text(encoding="utf-8"))
    devices = json.loads((path.parent / f"{stem}.devices.json").read_text(encoding="utf-8"))
    return Dataset(dict(series), labels, devices)


def metres_to_polyline(lat: float, lon: float, pts: list[list[float]]) -> float:
    """Distance from a point to a polyline (equirectangular; fine at city scale)."""
    ky, kx = 111_132.0, 111_320.0 * math.cos(math.radians(lat))
    px, py = lon * kx, lat * ky
    best = math.inf
    for (a_lat, a_lon), (b_lat, b_lon) in itertools.pairwise(pts):
        ax, ay, bx, by = a_lon * kx, a_lat * ky, b_lon * kx, b_lat * ky
        dx, dy = bx - ax, by - ay
        l2 = dx * dx + dy * dy
        f = 0.0 if l2 == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / l2))
        best = min(best, math.hypot(px - ax - f * dx, py - ay - f * dy))
    return best
