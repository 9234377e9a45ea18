"""warning_sign -> the Warning signs dashboard (``dashboards/warning_signs.py``)."""

from __future__ import annotations

from dashboards import warning_signs
from dashboards.parts import DashboardPart, register

PART = register(DashboardPart("warning_sign", "warning-signs", warning_signs.build))
