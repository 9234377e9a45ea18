"""vehicle -> the Fleet dashboard (``dashboards/fleet.py``)."""

from __future__ import annotations

from dashboards import fleet
from dashboards.parts import DashboardPart, register

PART = register(DashboardPart("vehicle", "fleet", fleet.build))
