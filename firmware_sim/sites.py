"""Real Akita City places (GSI evacuation-site points) used to place simulated devices.

出典: 国土地理院「指定緊急避難場所・指定避難所データ」 — see ``firmware_sim/data/SOURCE.md``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).parent / "data" / "akita_sites.json"
DISTRICTS = ("chuo", "hokubu", "seibu", "nanbu", "tobu", "kawabe", "yuwa")
DISTRICT_NAMES = {
    "chuo": "中央",
    "hokubu": "北部",
    "seibu": "西部",
    "nanbu": "南部",
    "tobu": "東部",
    "kawabe": "河辺",
    "yuwa": "雄和",
}
# Bus terminal: JR Akita Station, west exit (秋田駅西口).
AKITA_STATION = (39.7172, 140.1268)


@dataclass(frozen=True)
class Site:
    id: str
    name: str
    address: str
    lat: float
    lon: float
    flood: bool
    inland_flood: bool
    district: str

    @property
    def area(self) -> str:
        """Town name (町名) from the address: '秋田市土崎港西3-10-1' -> '土崎港西'."""
        rest = self.address.removeprefix("秋田市")
        return re.split(r"[0-9０-９]|字", rest, maxsplit=1)[0][:80] or rest[:80]


@cache
def attribution() -> str:
    return str(json.loads(DATA.read_text(encoding="utf-8"))["attribution"])


@cache
def load_sites() -> tuple[Site, ...]:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    return tuple(Site(**s) for s in data["sites"])
