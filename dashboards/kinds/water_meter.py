"""water_meter -> the Water meters dashboard (``dashboards/meters.py``): the pilot's figures."""

from __future__ import annotations

from dashboards import meters
from dashboards.parts import DashboardPart, register

PART = register(DashboardPart("water_meter", "water-meters", meters.build))
