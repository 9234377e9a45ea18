"""GeoJSON Polygon / MultiPolygon containment for choosing call units by area.

Even-odd ray casting on lon/lat, holes honoured. A city's polygons are small enough
that the plane approximation is exact to well under a house; no projection needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Ring = Sequence[Sequence[float]]


class GeoJsonError(ValueError):
    """The polygon is not a GeoJSON Polygon or MultiPolygon we can use; says where."""


def _ring(raw: Any, where: str) -> list[tuple[float, float]]:
    if not isinstance(raw, list) or len(raw) < 4:
        raise GeoJsonError(f"{where}: a linear ring needs at least 4 positions")
    out: list[tuple[float, float]] = []
    for i, pos in enumerate(raw):
        if (
            not isinstance(pos, list | tuple)
            or len(pos) < 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in pos[:2])
        ):
            raise GeoJsonError(f"{where}[{i}]: a position is [lon, lat] numbers")
        lon, lat = float(pos[0]), float(pos[1])
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise GeoJsonError(f"{where}[{i}]: [{lon}, {lat}] is outside lon/lat bounds")
        out.append((lon, lat))
    if out[0] != out[-1]:
        raise GeoJsonError(f"{where}: a linear ring must end where it starts")
    return out


def polygons(geometry: Any) -> list[list[list[tuple[float, float]]]]:
    """The polygons (each: outer ring, then holes) of a Polygon or MultiPolygon."""
    if not isinstance(geometry, dict):
        raise GeoJsonError("polygon: a GeoJSON geometry object is required")
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    if kind == "Polygon":
        polys = [coords]
    elif kind == "MultiPolygon" and isinstance(coords, list):
        polys = coords
    else:
        raise GeoJsonError(f"polygon.type: {kind!r} is not Polygon or MultiPolygon")
    out = []
    for p, poly in enumerate(polys):
        if not isinstance(poly, list) or not poly:
            raise GeoJsonError(f"polygon.coordinates[{p}]: a polygon needs an outer ring")
        out.append([_ring(r, f"polygon.coordinates[{p}][{i}]") for i, r in enumerate(poly)])
    return out


def _inside(ring: list[tuple[float, float]], lon: float, lat: float) -> bool:
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def contains(polys: list[list[list[tuple[float, float]]]], lon: float, lat: float) -> bool:
    return any(
        _inside(rings[0], lon, lat) and not any(_inside(h, lon, lat) for h in rings[1:])
        for rings in polys
    )
