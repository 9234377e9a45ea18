"""Render every dashboard to JSON, deterministically, and write ``dashboards/json/``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import system
from dashboards.parts import parts

JSON_DIR = Path(__file__).parent / "json"
SYSTEM_STEM = "system-health"  # the one dashboard that belongs to no device kind


def dashboards() -> dict[str, Callable[[], Any]]:
    """File stem -> builder: each kind's registered part, then system health."""
    found: dict[str, Callable[[], Any]] = {p.stem: p.build for p in parts().values()}
    if SYSTEM_STEM in found:
        raise ValueError(f"dashboard stem {SYSTEM_STEM!r} is kept for system health")
    found[SYSTEM_STEM] = system.build
    return found


def _number_panels(model: dict[str, Any]) -> None:
    """Stable panel ids (Grafana needs unique ids; the SDK leaves them unset)."""
    next_id = 1
    for panel in model.get("panels", []):
        panel["id"] = next_id
        next_id += 1
        for inner in panel.get("panels", []):
            inner["id"] = next_id
            next_id += 1


def to_model(dashboard: Dashboard) -> dict[str, Any]:
    model: dict[str, Any] = json.loads(json.dumps(dashboard, cls=JSONEncoder))
    _number_panels(model)
    for var in model.get("templating", {}).get("list", []):
        var.pop("id", None)  # the SDK writes an all-zero uuid for every variable
    return model


def render() -> dict[str, str]:
    """File name -> JSON text."""
    out = {}
    for stem, builder in dashboards().items():
        model = to_model(builder().build())
        out[f"{stem}.json"] = json.dumps(model, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return out


def models() -> dict[str, dict[str, Any]]:
    """File stem -> dashboard model, as rendered."""
    return {name.removesuffix(".json"): json.loads(text) for name, text in render().items()}


def write(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
