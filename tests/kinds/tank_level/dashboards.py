"""The dummy kind's dashboard part: the generic dashboard built from its declaration."""

from __future__ import annotations

from dashboards.generic import generic_part
from dashboards.parts import register

PART = register(generic_part("tank_level"))
