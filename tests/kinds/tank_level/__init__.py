"""A dummy kind, declared through the registry alone: a storage tank's level gauge.

Registered by naming this package in ``AKITA_KIND_PLUGINS`` (or an ``akita.kinds``
entry point); its cloud part is :mod:`.cloud`. Nothing else in the code base names it.
"""

from __future__ import annotations

from schemas.kinds import Kind, Values, quantity


class TankLevelValues(Values):
    """A storage tank's level gauge."""

    level: float | None = quantity("m", "MTR", "currentLevel", ge=0, le=20, desc="Tank level")


KIND = Kind(
    name="tank_level",
    values=TankLevelValues,
    title="Storage tank level",
    domain="water",
    fiware="WaterObserved",
    headline="level",
)
