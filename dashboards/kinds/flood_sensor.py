"""flood_sensor -> the Flood dashboard (``dashboards/flood.py``)."""

from __future__ import annotations

from dashboards import flood
from dashboards.parts import DashboardPart, register

PART = register(DashboardPart("flood_sensor", "flood", flood.build))
