"""water_block: water block outstation (flow meter + pressure transmitter), Modbus TCP."""

from __future__ import annotations

from firmware_sim.parts import SimPart, register
from firmware_sim.registers import WATER

PART = register(SimPart("water_block", poll_s=60.0, registers=WATER, fleet=True))
