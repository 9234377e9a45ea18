"""The dashboards' part of each device kind: the Grafana dashboard that shows it.

A kind's dashboard part is registered by the kind's name, from its own module in
``dashboards/kinds/`` (found by listing the folder) or from a kind plugin's
``dashboards`` submodule (:func:`schemas.kinds.load_layer`), as the detector parts are
in ``cloud/detect/parts.py``. ``akita dashboards build`` renders every registered part
(plus the system-health dashboard, which belongs to no kind); nothing else keeps a
table of kinds. A kind without a part is stored and detected, just not charted.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as d

from schemas.kinds import KINDS, UnknownKind, load_layer

LAYER = "dashboards"


@dataclass(frozen=True)
class DashboardPart:
    """``stem`` names the generated file (``dashboards/json/<stem>.json``)."""

    kind: str
    stem: str
    build: Callable[[], d.Dashboard]


_PARTS: dict[str, DashboardPart] = {}
_loaded = False


def register(part: DashboardPart) -> DashboardPart:
    """Add ``part``; a kind nobody declared or a second part for a kind is refused."""
    if part.kind not in KINDS:
        raise UnknownKind(part.kind)
    known = _PARTS.get(part.kind)
    if known is not None and known != part:
        raise ValueError(f"dashboard part for kind {part.kind!r} registered twice")
    stems = {p.stem: p.kind for p in _PARTS.values() if p.kind != part.kind}
    if part.stem in stems:
        raise ValueError(f"dashboard stem {part.stem!r} of kind {part.kind!r} is taken by "
                         f"kind {stems[part.stem]!r}")  # fmt: skip
    _PARTS[part.kind] = part
    return part


def parts() -> Mapping[str, DashboardPart]:
    """Kind -> its part, loading ``dashboards/kinds/`` and the plugins' once."""
    global _loaded
    if not _loaded:
        from dashboards import kinds

        for m in pkgutil.iter_modules(kinds.__path__):
            importlib.import_module(f"{kinds.__name__}.{m.name}")
        load_layer(LAYER)
        _loaded = True
    return _PARTS
