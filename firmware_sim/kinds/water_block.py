"""water_block: water block outstation (flow meter + pressure transmitter), Modbus TCP."""

from __future__ import annotations

from firmware_sim.parts import SimPart, Transport, register
from firmware_sim.registers import WATER

PART = register(
    SimPart("water_block", poll_s=60.0, registers=WATER, fleet=True, transport=Transport.MODBUS_TCP)
)
