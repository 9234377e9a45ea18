"""A TUF-2000M-class ultrasonic flow meter, register for register.

The layout is the real meter's (``device-register-facts.md``, the vendor's manual
numbers registers from 1; the addresses below are 0-based protocol addresses):

==========  ==============  ===================================================
address     manual reg.     value
==========  ==============  ===================================================
0-1         1-2             flow, m³/h, float32, low word first (CDAB)
8-9         9-10            net totaliser, integer part, int32 CDAB
10-11       11-12           net totaliser, decimal fraction, float32 CDAB
32-33       33-34           T1 (supply) temperature, °C, float32 CDAB
34-35       35-36           T2 (return) temperature, °C, float32 CDAB
71          72              error bits, int16 (0 = no error)
91          92              signal quality 0-99 in the low byte
==========  ==============  ===================================================

Holding registers 0-99 answer (others get exception 02, illegal data address); writes
get exception 01. The high byte of register 92 is not the signal quality: the
simulator puts a non-zero value there (``SQ_HIGH_BYTE``) so a config that reads the
whole register shows its mistake. ``deploy/edge/tuf2000m.toml`` reads all of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pymodbus.datastore.context import ModbusBaseSlaveContext
from pymodbus.pdu import ExceptionResponse

from firmware_sim.registers import f32, i32

WINDOW = (0, 100)
SQ_HIGH_BYTE = 0x03


@dataclass
class Tuf2000m:
    """The meter's present readings; change them to inject a fault."""

    flow: float = -0.8598  # the real dump's value, m³/h
    net_total: float = 23.5  # m³
    t1: float = 7.101  # °C
    t2: float = 5.5
    error_bits: int = 0
    signal_quality: int = 85

    def registers(self) -> dict[int, int]:
        """Address -> register value, as the meter holds them."""
        whole = int(self.net_total)
        regs: dict[int, int] = {}
        for base, words in (
            (0, f32(self.flow, "CDAB")),
            (8, i32(whole, "CDAB")),
            (10, f32(self.net_total - whole, "CDAB")),
            (32, f32(self.t1, "CDAB")),
            (34, f32(self.t2, "CDAB")),
        ):
            regs[base], regs[base + 1] = words
        regs[71] = self.error_bits & 0xFFFF
        regs[91] = (SQ_HIGH_BYTE << 8) | (self.signal_quality & 0xFF)
        return regs


class Tuf2000mContext(ModbusBaseSlaveContext):
    """A pymodbus slave context serving one :class:`Tuf2000m` (function 3 only)."""

    def __init__(self, meter: Tuf2000m) -> None:
        self.meter = meter
        self.reads = 0

    def reset(self) -> None:
        """Nothing to reset: the meter is the state."""

    def getValues(self, fc_as_hex: int, address: int, count: int = 1) -> Sequence[int] | int:  # type: ignore[override]
        if fc_as_hex != 3:
            return ExceptionResponse.ILLEGAL_FUNCTION
        if address < WINDOW[0] or address + count > WINDOW[1]:
            return ExceptionResponse.ILLEGAL_ADDRESS
        self.reads += 1
        regs = self.meter.registers()
        return [regs.get(a, 0) for a in range(address, address + count)]

    def setValues(self, fc_as_hex: int, address: int, values: Sequence[int | bool]) -> int:  # type: ignore[override]
        return ExceptionResponse.ILLEGAL_FUNCTION
