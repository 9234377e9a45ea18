"""vehicle: GPS fix every 30 s, served as an NMEA stream."""

from __future__ import annotations

from firmware_sim.parts import SimPart, register

PART = register(SimPart("vehicle", poll_s=30.0, fleet=True))
