"""The dummy kind's simulator part: a tank gauge whose level a test sets, served over
Modbus TCP as one holding register in centimetres (what its edge registers read back);
the declared transport is all a scenario fleet needs to serve it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge.config import DataType, Register
from firmware_sim.models.base import DeviceModel
from firmware_sim.parts import SimPart, Transport, register
from firmware_sim.registers import FC_HOLDING, RegisterMap


@dataclass
class TankLevelModel(DeviceModel):
    level_m: float = 2.5

    def sample(self, t: float) -> dict[str, Any]:
        return {"level": round(self.level_m, 2)}


def _encode(model: DeviceModel, t: float) -> dict[int, dict[int, int]]:
    assert isinstance(model, TankLevelModel)
    return {FC_HOLDING: {0: round(model.sample(t)["level"] * 100)}}


REGISTERS = RegisterMap(
    windows={FC_HOLDING: ((0, 2),)},
    encode=_encode,
    edge_registers=(Register(field="level", address=0, type=DataType.UINT16, scale=0.01),),
)
PART = register(
    SimPart("tank_level", poll_s=10.0, registers=REGISTERS, transport=Transport.MODBUS_TCP)
)
