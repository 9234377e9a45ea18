"""manhole_pump: pump-station PLC, Modbus TCP."""

from __future__ import annotations

from firmware_sim.parts import SimPart, Transport, register
from firmware_sim.registers import PUMP

PART = register(
    SimPart("manhole_pump", poll_s=60.0, registers=PUMP, fleet=True, transport=Transport.MODBUS_TCP)
)
