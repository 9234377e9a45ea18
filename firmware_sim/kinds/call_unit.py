"""call_unit: heartbeat every 30 min, served on an AKCU line."""

from __future__ import annotations

from firmware_sim.parts import SimPart, register

PART = register(SimPart("call_unit", poll_s=1800.0, fleet=True))
