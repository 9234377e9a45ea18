"""Register maps of the simulated devices, and the matching edge-config register lists.

One place defines both what the simulator serves and what the generated edge config
reads, so the two cannot drift apart. Addresses are 0-based protocol addresses.

Water block outstation (Modbus, holding registers, unit = block):
  TUF-2000M-class flow meter map (manual registers 1-based; 32-bit values low word
  first, CDAB):
    0-1   flow, m³/h, float32 CDAB            (manual reg 1-2)
    2-3   velocity, m/s, float32 CDAB          (manual reg 3-4)
    8-9   net totaliser, m³, int32 CDAB        (manual reg 9-10)
    10-11 net totaliser fraction, float32 CDAB (manual reg 11-12)
    32-33 water temperature, °C, float32 CDAB  (manual reg 33-34)
    71    error bits, uint16                   (manual reg 72; 0 = ok)
    91    signal quality 0-99 in the low byte  (manual reg 92)
  KELLER Series-30-class pressure transmitter block (floats high word first, ABCD):
    256-257 (0x0100) P1, bar, float32 ABCD
    258-259 (0x0102) TOB1 temperature, °C, float32 ABCD
  The edge reads flow, totaliser (integer part) and pressure, scaling bar -> MPa by 0.1.

Manhole pump station PLC (Modbus TCP, input registers; set points in holding):
    0  wet-well level, cm, int16          1  pump 1 current, 0.1 A, int16
    2  pump 2 current, 0.1 A, int16       3  status bits, uint16:
       b0 pump 1 running, b1 pump 2 running, b2 pump 1 fault, b3 pump 2 fault,
       b4 high level, b5 power failure
    4  fault code, uint16 (see firmware_sim.models.pump)
    6-7 pump 1 run hours, 0.01 h, uint32 ABCD   8-9 pump 2 run hours, 0.01 h, uint32 ABCD
    10-11 pump 1 starts, uint32 ABCD            12-13 pump 2 starts, uint32 ABCD
  holding 0-3: start, stop, assist and high-level set points, cm (read-only here).

Road flood sensor (Modbus RTU, holding registers):
    0 depth, mm, int16    1 rain intensity, 0.1 mm/h, int16
    2 status bits (b0 sensor ok)    3 firmware version ×100
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from edge.config import ByteOrder, DataType, Function, Register
from firmware_sim.models.base import DeviceModel
from firmware_sim.models.flood import FloodSensorModel
from firmware_sim.models.pump import PumpStationModel
from firmware_sim.models.water import WaterBlockModel

FC_HOLDING = 3
FC_INPUT = 4


def f32(value: float, order: str) -> list[int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [hi, lo] if order == "ABCD" else [lo, hi]


def i32(value: int, order: str, *, signed: bool = True) -> list[int]:
    raw = struct.pack(">i" if signed else ">I", value)
    hi, lo = struct.unpack(">HH", raw)
    return [hi, lo] if order == "ABCD" else [lo, hi]


def i16(value: int) -> int:
    return max(-32768, min(32767, value)) & 0xFFFF


@dataclass(frozen=True)
class RegisterMap:
    """Address windows a device answers (others -> illegal data address) and its encoder."""

    windows: dict[int, tuple[tuple[int, int], ...]]  # function code -> ((start, end), ...)
    encode: Callable[[DeviceModel, float], dict[int, dict[int, int]]]
    edge_registers: tuple[Register, ...]


def _water(model: DeviceModel, t: float) -> dict[int, dict[int, int]]:
    assert isinstance(model, WaterBlockModel)
    flow = model.flow(t)
    total = model.totaliser(t)
    whole = int(total)
    regs: dict[int, int] = {}
    for a, v in zip((0, 1), f32(flow, "CDAB"), strict=True):
        regs[a] = v
    for a, v in zip((2, 3), f32(flow / 3600.0 / 0.0707, "CDAB"), strict=True):  # DN300 main
        regs[a] = v
    for a, v in zip((8, 9), i32(whole, "CDAB"), strict=True):
        regs[a] = v
    for a, v in zip((10, 11), f32(total - whole, "CDAB"), strict=True):
        regs[a] = v
    for a, v in zip((32, 33), f32(14.0, "CDAB"), strict=True):
        regs[a] = v
    regs[71] = 0
    regs[91] = 85
    for a, v in zip((256, 257), f32(model.pressure_bar(t), "ABCD"), strict=True):
        regs[a] = v
    for a, v in zip((258, 259), f32(14.2, "ABCD"), strict=True):
        regs[a] = v
    return {FC_HOLDING: regs}


def _pump(model: DeviceModel, t: float) -> dict[int, dict[int, int]]:
    assert isinstance(model, PumpStationModel)
    v = model.sample(t)
    st = model.state(t)
    ir = {
        0: i16(round(v["level"] * 100)),
        1: i16(round(v["pump1_current"] * 10)),
        2: i16(round(v["pump2_current"] * 10)),
        3: model.status_bits(t),
        4: v["fault_code"],
        5: 0,
    }
    for base, val in (
        (6, round(v["pump1_run_hours"] * 100)),
        (8, round(v["pump2_run_hours"] * 100)),
        (10, model.starts0[0] + st.starts[0]),
        (12, model.starts0[1] + st.starts[1]),
    ):
        hi, lo = i32(val, "ABCD", signed=False)
        ir[base], ir[base + 1] = hi, lo
    hr = {
        0: round(model.start_level * 100),
        1: round(model.stop_level * 100),
        2: round(model.assist_level * 100),
        3: round(model.high_level * 100),
    }
    return {FC_INPUT: ir, FC_HOLDING: hr}


def _flood(model: DeviceModel, t: float) -> dict[int, dict[int, int]]:
    assert isinstance(model, FloodSensorModel)
    depth_mm = round(model.depth_mm(t))
    rain = round(model.rain(t) * 10)
    return {FC_HOLDING: {0: i16(depth_mm), 1: i16(rain), 2: 1, 3: 214}}


def _reg(field: str, address: int, type_: DataType, **kw: object) -> Register:
    return Register(field=field, address=address, type=type_, **kw)  # type: ignore[arg-type]


WATER = RegisterMap(
    windows={FC_HOLDING: ((0, 100), (256, 260))},
    encode=_water,
    edge_registers=(
        _reg("flow", 0, DataType.FLOAT32, order=ByteOrder.CDAB, unit="m3/h", deadband=0.5),
        _reg("totaliser", 8, DataType.INT32, order=ByteOrder.CDAB, unit="m3"),
        _reg("pressure", 256, DataType.FLOAT32, order=ByteOrder.ABCD, scale=0.1, unit="MPa"),
    ),
)
_IN = Function.INPUT
PUMP = RegisterMap(
    windows={FC_INPUT: ((0, 14),), FC_HOLDING: ((0, 4),)},
    encode=_pump,
    edge_registers=(
        _reg("level", 0, DataType.INT16, function=_IN, scale=0.01, unit="m"),
        _reg("pump1_current", 1, DataType.INT16, function=_IN, scale=0.1, unit="A"),
        _reg("pump2_current", 2, DataType.INT16, function=_IN, scale=0.1, unit="A"),
        _reg("pump1_running", 3, DataType.BIT, function=_IN, bit=0),
        _reg("pump2_running", 3, DataType.BIT, function=_IN, bit=1),
        _reg("fault_code", 4, DataType.UINT16, function=_IN),
        _reg("pump1_run_hours", 6, DataType.UINT32, function=_IN, scale=0.01, unit="h"),
        _reg("pump2_run_hours", 8, DataType.UINT32, function=_IN, scale=0.01, unit="h"),
    ),
)
FLOOD = RegisterMap(
    windows={FC_HOLDING: ((0, 4),)},
    encode=_flood,
    edge_registers=(
        _reg("depth", 0, DataType.INT16, scale=0.1, unit="cm"),
        _reg("rain_intensity", 1, DataType.INT16, scale=0.1, unit="mm/h"),
    ),
)
