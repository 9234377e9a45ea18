"""The shipped evacuation-site list and the nearest flood-designated site."""

from __future__ import annotations

import json

from cloud.shelters import (
    ATTRIBUTION,
    DATA_FILE,
    haversine_m,
    load_shelters,
    nearest_flood_shelter,
)


def test_shipped_file_is_the_real_list_with_attribution() -> None:
    doc = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    assert doc["attribution"] == ATTRIBUTION
    assert "国土地理院" in (DATA_FILE.parent / "SOURCE.md").read_text(encoding="utf-8")
    shelters = load_shelters()
    assert len(shelters) == len(doc["features"]) > 100
    names = {s.name for s in shelters}
    assert "旭南小学校グラウンド" in names
    # every site lies inside Akita City's bounding box
    assert all(39.4 < s.lat < 40.0 and 139.9 < s.lon < 140.5 for s in shelters)
    assert any(s.flood for s in shelters) and not all(s.flood for s in shelters)


def test_nearest_flood_shelter_skips_sites_not_designated_for_flood() -> None:
    # the 旭南小学校 ground is not flood-designated; its gymnasium next door is
    ground = next(s for s in load_shelters() if s.name == "旭南小学校グラウンド")
    assert not ground.flood
    best = nearest_flood_shelter(ground.lat, ground.lon)
    assert best is not None and best.flood and best.name != ground.name
    # brute force agrees
    flood = [s for s in load_shelters() if s.flood]
    expect = min(flood, key=lambda s: s.distance_m(ground.lat, ground.lon))
    assert best == expect
    assert best.distance_m(ground.lat, ground.lon) < 500


def test_inland_flood_also_accepts_flood_sites() -> None:
    # Akita designates no site for 内水氾濫 in this release, so inland flooding falls back
    # to 洪水 sites rather than naming none.
    lat, lon = 39.7200, 140.1025  # near Akita station
    assert nearest_flood_shelter(lat, lon, inland_flood=True) == nearest_flood_shelter(lat, lon)


def test_haversine_known_distance() -> None:
    # one degree of latitude is about 111.2 km
    assert abs(haversine_m(39.0, 140.0, 40.0, 140.0) - 111_195) < 100
