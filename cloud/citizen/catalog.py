"""Fixed lists the pages offer: town names, report categories, life-event procedures."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.citizen.errors import CitizenError
from cloud.db.models import DeviceRow
from cloud.opendata.settings import DEFAULT_PUBLIC_KINDS

DATA_DIR = Path(__file__).parent / "data"

# Akita City's administrative area, with a margin: points outside are refused.
CITY_BBOX = (39.45, 139.95, 39.95, 140.45)  # south, west, north, east

CATEGORIES: dict[str, tuple[str, dict[str, str]]] = {
    "road": (
        "道路",
        {
            "pothole": "穴・陥没",
            "pavement": "舗装の破損・段差",
            "gutter": "側溝・ふたの破損",
            "streetlight": "街路灯の故障",
            "snow": "除雪・路面の凍結",
            "flooding": "道路の冠水",
            "other": "その他",
        },
    ),
    "river": (
        "河川",
        {
            "bank": "護岸・堤防の損傷",
            "debris": "ごみ・不法投棄",
            "tree": "倒木・流木",
            "water_level": "増水・あふれそう",
            "other": "その他",
        },
    ),
    "park": (
        "公園",
        {
            "playground": "遊具の破損",
            "trees": "樹木・草刈り",
            "toilet": "トイレ",
            "facility": "ベンチ・柵などの施設",
            "light": "照明の故障",
            "other": "その他",
        },
    ),
}

STATUS_LABELS = {
    "received": "受付済み",
    "triaged": "担当課で確認中",
    "confirmed": "現地確認済み",
    "in_progress": "対応中",
    "closed": "対応完了",
    "rejected": "対象外",
}


def category_label(category: str, subcategory: str) -> str:
    name, subs = CATEGORIES.get(category, (category, {}))
    return f"{name}：{subs.get(subcategory, subcategory)}"


def in_city(lat: float, lon: float) -> bool:
    s, w, n, e = CITY_BBOX
    return s <= lat <= n and w <= lon <= e


@lru_cache(maxsize=1)
def shipped_areas() -> dict[str, tuple[str, ...]]:
    """District -> town names from ``data/areas.yaml``."""
    raw = yaml.safe_load((DATA_DIR / "areas.yaml").read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise CitizenError(f"{DATA_DIR / 'areas.yaml'}: expected a mapping district -> towns")
    return {str(k): tuple(str(t) for t in v) for k, v in raw.items()}


def known_areas(
    sm: sessionmaker[Session] | None, kinds: Collection[str] = DEFAULT_PUBLIC_KINDS
) -> dict[str, tuple[str, ...]]:
    """Shipped towns plus areas of registered devices of a public ``kinds`` (under
    「センサー設置地区」): a call unit's area would tell where a monitored resident lives."""
    groups = dict(shipped_areas())
    if sm is None:
        return groups
    shipped = {t for towns in groups.values() for t in towns}
    with sm() as s:
        rows = s.scalars(
            select(DeviceRow.area)
            .where(DeviceRow.area.is_not(None), DeviceRow.kind.in_([str(k) for k in kinds]))
            .distinct()
        )
        extra = sorted({a for a in rows if a and a not in shipped})
    if extra:
        groups["センサー設置地区"] = tuple(extra)
    return groups


@dataclass(frozen=True)
class Procedure:
    name: str
    deadline: str
    counter: str
    documents: tuple[str, ...]


@dataclass(frozen=True)
class LifeEvent:
    id: str
    name: str
    summary: str
    procedures: tuple[Procedure, ...]


@dataclass(frozen=True)
class ProcedureGuide:
    notice: str
    events: tuple[LifeEvent, ...]

    def event(self, event_id: str) -> LifeEvent | None:
        return next((e for e in self.events if e.id == event_id), None)


def load_procedures(path: Path | None = None) -> ProcedureGuide:
    """Read the procedure YAML; raises :class:`CitizenError` naming the bad entry."""
    path = path or DATA_DIR / "procedures.yaml"
    return _load_procedures(path)


@lru_cache(maxsize=4)
def _load_procedures(path: Path) -> ProcedureGuide:
    raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    counters: dict[str, str] = raw.get("counters", {})
    events = []
    for i, ev in enumerate(raw.get("events", [])):
        try:
            procs = tuple(
                Procedure(
                    name=str(p["name"]),
                    deadline=str(p.get("deadline", "")),
                    counter=counters.get(p["counter"], str(p["counter"])),
                    documents=tuple(str(d) for d in p.get("documents", [])),
                )
                for p in ev["procedures"]
            )
            events.append(
                LifeEvent(
                    id=str(ev["id"]),
                    name=str(ev["name"]),
                    summary=str(ev.get("summary", "")),
                    procedures=procs,
                )
            )
        except (KeyError, TypeError) as e:
            raise CitizenError(f"{path}: events[{i}] is missing {e}") from e
    return ProcedureGuide(notice=str(raw.get("notice", "")), events=tuple(events))
