"""call_unit -> the Call units dashboard (``dashboards/call_units.py``)."""

from __future__ import annotations

from dashboards import call_units
from dashboards.parts import DashboardPart, register

PART = register(DashboardPart("call_unit", "call-units", call_units.build))
