"""Run in a subprocess with ``AKITA_KIND_PLUGINS=tests.kinds.tank_level``: a scenario
fleet with one dummy tank gauge added to its first gateway. Nothing in the fleet names
the kind: it is served over the transport its simulator part declares, and the gateway
config the fleet writes reads it back through the edge's own Modbus driver. Prints one
JSON line: the tank's generated [[devices]] entry, its summary and the value read.

    python -m tests.firmware_sim.run_tank_fleet WORKDIR LEVEL_M
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from edge.config import load_config
from edge.drivers.modbus.driver import ModbusDriver
from firmware_sim import fleet as fleet_module
from firmware_sim.plan import SimDevice
from firmware_sim.scenarios import Run
from schemas.wire import DeviceInfo
from tests.kinds.tank_level.sim import TankLevelModel

DEVICE = "tank-1"


def _with_tank(level_m: float) -> Any:
    """The scenario build, plus the tank on the plan's first gateway."""
    real_build = fleet_module.build

    def build(*args: Any, **kwargs: Any) -> Run:
        run = real_build(*args, **kwargs)
        gateway = sorted(run.plan.gateways())[0]
        info = DeviceInfo(device_id=DEVICE, kind="tank_level", poll_interval_s=10.0)
        run.plan.devices.append(
            SimDevice(info, TankLevelModel(DEVICE, key=0, level_m=level_m), gateway)
        )
        return run

    return build


async def main(work: Path, level_m: float) -> dict[str, Any]:
    fleet_module.build = _with_tank(level_m)  # type: ignore[assignment]
    async with await fleet_module.start_fleet(
        "demo", scale="small", days=0.05, workdir=work, calendar="scenario"
    ) as fleet:
        summary = next(s for s in fleet.devices if s.device_id == DEVICE)
        config_path = work / "edge" / f"{summary.gateway}.toml"
        device = next(d for d in load_config(config_path).devices if d.id == DEVICE)
        driver = ModbusDriver(device)
        await driver.open()
        try:
            values = await driver.read()
        finally:
            await driver.close()
        return {
            "driver": device.driver,
            "unit_id": device.unit_id,
            "fields": [r.field for r in device.registers],
            "endpoint": summary.endpoint,
            "read": values,
        }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1]), float(sys.argv[2]))), default=str))
