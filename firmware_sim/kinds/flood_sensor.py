"""flood_sensor: flood depth sensor, Modbus RTU."""

from __future__ import annotations

from firmware_sim.parts import SimPart, Transport, register
from firmware_sim.registers import FLOOD

PART = register(
    SimPart(
        "flood_sensor", poll_s=60.0, registers=FLOOD, fleet=True, transport=Transport.MODBUS_RTU
    )
)
