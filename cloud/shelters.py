"""Akita City designated emergency evacuation sites (指定緊急避難場所) and the nearest one.

The data is the real 国土地理院 list for 秋田市 shipped at ``cloud/data/akita_shelters.geojson``
(see ``cloud/data/SOURCE.md``). Anything that shows a site must show :data:`ATTRIBUTION`.

Akita City designates many sites for 洪水 (river flood) and, in the current release, none for
内水氾濫 (inland/road flooding). :func:`nearest_flood_shelter` therefore accepts a 洪水 site
always and additionally a 内水氾濫 site when ``inland_flood`` is true, so a road-flooding alert
still names a flood-safe site.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cloud.errors import CloudError

DATA_FILE = Path(__file__).parent / "data" / "akita_shelters.geojson"
ATTRIBUTION = "出典: 国土地理院「指定緊急避難場所・指定避難所データ」"

_EARTH_RADIUS_M = 6_371_008.8


class ShelterDataError(CloudError):
    """The shipped shelter file is missing or malformed (names the file and feature)."""


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


@dataclass(frozen=True, slots=True)
class Shelter:
    name: str
    address: str
    lat: float
    lon: float
    flood: bool
    inland_flood: bool

    def distance_m(self, lat: float, lon: float) -> float:
        return haversine_m(self.lat, self.lon, lat, lon)


def _parse(path: Path) -> tuple[Shelter, ...]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ShelterDataError(f"cannot read shelter file {path}: {e}") from e
    shelters: list[Shelter] = []
    for i, feat in enumerate(doc.get("features", [])):
        try:
            props = feat["properties"]
            lon, lat = feat["geometry"]["coordinates"][:2]
            shelters.append(
                Shelter(
                    name=str(props["施設・場所名"]),
                    address=str(props.get("住所") or ""),
                    lat=float(lat),
                    lon=float(lon),
                    flood=props.get("洪水") == "1",
                    inland_flood=props.get("内水氾濫") == "1",
                )
            )
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ShelterDataError(f"bad feature #{i} in {path}: {e!r}") from e
    return tuple(shelters)


@lru_cache(maxsize=4)
def _cached(path: Path) -> tuple[Shelter, ...]:
    return _parse(path)


def load_shelters(path: Path | None = None) -> list[Shelter]:
    """Every site in the shipped file (or ``path``), in file order."""
    return list(_cached(path or DATA_FILE))


def nearest_flood_shelter(
    lat: float, lon: float, *, inland_flood: bool = False, path: Path | None = None
) -> Shelter | None:
    """Nearest site designated for 洪水 (or for 内水氾濫 too, when ``inland_flood``)."""
    best: Shelter | None = None
    best_d = math.inf
    for s in _cached(path or DATA_FILE):
        if not (s.flood or (inland_flood and s.inland_flood)):
            continue
        d = s.distance_m(lat, lon)
        if d < best_d:
            best, best_d = s, d
    return best
