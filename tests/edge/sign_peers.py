"""An underpass on a simulated RS-485 line: the warning sign (firmware_sim's model and
its writable unit) and a depth sensor whose depth the test sets, both on one pty bus
at 9600 baud, and the gateway config from ``deploy/edge/warning_sign.toml`` pointed at
it."""

from __future__ import annotations

import asyncio
import threading
import time
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymodbus.datastore.context import ModbusBaseSlaveContext
from pymodbus.pdu import ExceptionResponse

from firmware_sim.models.warning_sign import WarningSignModel
from firmware_sim.servers.modbus import RtuPtyBus
from firmware_sim.servers.warning_sign import WarningSignSlave

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "deploy" / "edge" / "warning_sign.toml"
GW = "gw-flood-araya-02"
SENSOR = "fs-araya-underpass-2"
SIGN = "sign-araya"
SENSOR_UNIT, SIGN_UNIT = 3, 4


class DepthSlave(ModbusBaseSlaveContext):
    """The depth sensor's two holding registers: depth (mm) and rain (0.1 mm/h)."""

    def __init__(self) -> None:
        self.depth_mm = 0
        self.rain = 0

    def reset(self) -> None:
        """Nothing to reset."""

    def getValues(self, fc_as_hex: int, address: int, count: int = 1) -> Sequence[int] | int:  # type: ignore[override]
        if fc_as_hex != 3 or address + count > 2:
            return ExceptionResponse.ILLEGAL_ADDRESS
        return [self.depth_mm, self.rain][address : address + count]

    def setValues(self, fc_as_hex: int, address: int, values: Sequence[int | bool]) -> int:  # type: ignore[override]
        return ExceptionResponse.ILLEGAL_FUNCTION


@dataclass
class Underpass:
    path: str
    sign: WarningSignModel
    sign_unit: WarningSignSlave
    sensor: DepthSlave


@contextmanager
def underpass_on_a_bus(sign: WarningSignModel | None = None) -> Iterator[Underpass]:
    """The sign and the sensor behind one pty bus served from its own thread and loop."""
    model = sign or WarningSignModel(device_id=SIGN, key=0)
    unit = WarningSignSlave(model, time.monotonic)
    sensor = DepthSlave()
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        bus = RtuPtyBus("underpass", {SIGN_UNIT: unit, SENSOR_UNIT: sensor}, baudrate=9600)
        state["path"] = await bus.start()
        state["loop"], state["stop"] = asyncio.get_running_loop(), asyncio.Event()
        ready.set()
        await state["stop"].wait()
        await bus.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield Underpass(str(state["path"]), model, unit, sensor)
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(10)


def sample_config(tmp: Path, mqtt_port: int, bus_path: str) -> dict[str, Any]:
    """``deploy/edge/warning_sign.toml`` on the test's broker, spool and pty."""
    cfg = tomllib.loads(SAMPLE.read_text(encoding="utf-8"))
    cfg["gateway"].update(spool_path=str(tmp / "spool.db"), batch_max_delay_s=0.1)
    cfg["mqtt"] = {"host": "127.0.0.1", "port": mqtt_port, "reconnect_max_s": 1.0}
    cfg["buses"][0]["port"] = bus_path
    for dev in cfg["devices"]:
        dev["poll_interval_s"] = 0.5  # the sample's 2-5 s, shortened for the test
    return cfg
