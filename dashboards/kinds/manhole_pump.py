"""manhole_pump -> the Pump stations dashboard (``dashboards/pumps.py``)."""

from __future__ import annotations

from dashboards import pumps
from dashboards.parts import DashboardPart, register

PART = register(DashboardPart("manhole_pump", "pump-stations", pumps.build))
