"""One-off: derive ``akita_sites.json`` from the GSI evacuation-site GeoJSON.

Not imported at run time (the project runs without the source tree). Kept so the
derivation is reproducible::

    python firmware_sim/data/derive_sites.py ../shared/data/akita-shelters \
        > firmware_sim/data/akita_sites.json

Districts are the seven 地域 of Akita City: 河辺 and 雄和 come from the address,
the five urban districts from the nearest 市民サービスセンター (approximate points).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

URBAN_CENTRES = {
    "chuo": (39.7186, 140.1024),
    "hokubu": (39.7569, 140.0716),
    "seibu": (39.6900, 140.0760),
    "nanbu": (39.6740, 140.1300),
    "tobu": (39.7130, 140.1470),
}


def district(address: str, lat: float, lon: float) -> str:
    if "河辺" in address:
        return "kawabe"
    if "雄和" in address:
        return "yuwa"
    return min(URBAN_CENTRES, key=lambda d: math.dist((lat, lon), URBAN_CENTRES[d]))


def main(src: Path) -> None:
    data = json.loads((src / "emergency_052019_akita.geojson").read_text(encoding="utf-8"))
    sites = []
    for f in data["features"]:
        p = f["properties"]
        lon, lat = f["geometry"]["coordinates"]
        addr = p["住所"].removeprefix("秋田県")
        sites.append(
            {
                "id": p["共通ID"],
                "name": p["施設・場所名"],
                "address": addr,
                "lat": round(lat, 6),
                "lon": round(lon, 6),
                "flood": p["洪水"] == "1",
                "inland_flood": p["内水氾濫"] == "1",
                "district": district(addr, lat, lon),
            }
        )
    sites.sort(key=lambda s: s["id"])
    out = {
        "attribution": "出典: 国土地理院「指定緊急避難場所・指定避難所データ」(秋田市 052019), "
        "加工して作成 (derived: name, address, point, flood flags, district)",
        "source": "https://www.gsi.go.jp/bousaichiri/hinanbasho.html via "
        "motohasystem/jp-shelter-api docs/api/v0/emergency/052019.json (retrieved 2025-10-27)",
        "sites": sites,
    }
    sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=0) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
