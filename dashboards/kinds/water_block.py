"""water_block -> the Water blocks dashboard (``dashboards/water.py``)."""

from __future__ import annotations

from dashboards import water
from dashboards.parts import DashboardPart, register

PART = register(DashboardPart("water_block", "water-blocks", water.build))
