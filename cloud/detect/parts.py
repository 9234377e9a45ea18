"""The cloud's part of each device kind: how its readings reach its detectors.

A kind's detector part is registered by the kind's name, from its own module in
``cloud/detect/kinds/`` (found by listing the folder) or from a kind plugin's ``cloud``
submodule (:func:`schemas.kinds.load_layer`). The engine routes by this registry, the
evaluator scores by it (which alert kinds belong to which device kind); nothing else
keeps a table of kinds. A kind without a part is stored and shown, just not detected.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cloud.detect.base import Detection
from cloud.detect.config import DetectConfig
from schemas.kinds import load_layer

if TYPE_CHECKING:
    from cloud.detect.engine import DetectorEngine

# (detections out, reading, DeviceInfo | None) -> None; appends what changed
Route = Callable[[list[Detection], Any, Any], None]


@dataclass(frozen=True)
class DetectorPart:
    """``route(engine)`` binds the kind's route to the engine's current detectors (it is
    called again after a checkpoint restore). ``alerts``: the detection kinds it raises.
    ``event_period_s``: for a kind that speaks only on events and heartbeats
    (``Offline.EVENTS``), how long a device may be silent, from the settings.
    ``tick(engine, now)``: the part's time-based detections (a silence judged on the
    clock, not on a reading), called from :meth:`DetectorEngine.tick`."""

    kind: str
    route: Callable[[DetectorEngine], Route]
    alerts: tuple[str, ...] = ()
    event_period_s: Callable[[DetectConfig], float] | None = None
    tick: Callable[[DetectorEngine, datetime], list[Detection]] | None = None


_PARTS: dict[str, DetectorPart] = {}
_loaded = False


def register(part: DetectorPart) -> DetectorPart:
    if part.kind in _PARTS and _PARTS[part.kind] != part:
        raise ValueError(f"detector part for kind {part.kind!r} registered twice")
    _PARTS[part.kind] = part
    return part


def parts() -> Mapping[str, DetectorPart]:
    """Every registered part, loading ``cloud/detect/kinds/`` and the plugins' once."""
    global _loaded
    if not _loaded:
        from cloud.detect import kinds

        for m in pkgutil.iter_modules(kinds.__path__):
            importlib.import_module(f"{kinds.__name__}.{m.name}")
        load_layer("cloud")
        _loaded = True
    return _PARTS


def alert_domains() -> dict[str, str]:
    """Detection kind -> the device kind whose detector raises it (for scoring)."""
    return {alert: p.kind for p in parts().values() for alert in p.alerts}
