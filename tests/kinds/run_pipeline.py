"""Run in a subprocess with ``AKITA_KIND_PLUGINS=tests.kinds.tank_level``: the dummy
kind's simulator part serves a gauge over Modbus TCP, a gateway polls it with the
registers that part declares, and the cloud service (ingest, InfluxDB, detectors,
alerts) runs on one broker. Prints one JSON line per event it waited for, then the
queries of the kind's dashboard part.

    python -m tests.kinds.run_pipeline MQTT_PORT INFLUX_PORT DB WORKDIR
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from cloud.provisioning import read_device_list
from cloud.service import CloudService
from cloud.settings import CloudSettings
from dashboards.build import models
from dashboards.parts import parts as dashboard_parts
from edge.agent import Agent
from edge.config import EdgeConfig, parse_config
from edge.uplink import gateway_meta
from firmware_sim.parts import part
from firmware_sim.servers.modbus import LazySlaveContext, TcpListener
from schemas.kinds import KINDS
from tests.kinds.tank_level.sim import TankLevelModel

KIND = "tank_level"
DEVICE = "tank-1"
HIGH_M = 4.75  # above the detector part's 4 m


def _edge_config(mqtt: int, modbus: int, work: Path) -> EdgeConfig:
    regmap = part(KIND).registers
    assert regmap is not None, "the sim part serves no registers"
    registers = [r.model_dump(mode="json", exclude_defaults=True) for r in regmap.edge_registers]
    return parse_config(
        {
            "gateway": {"id": "gw-tank", "spool_path": str(work / "spool.db"),
                        "batch_max_delay_s": 0.05},
            "mqtt": {"host": "127.0.0.1", "port": mqtt},
            "devices": [{
                "id": DEVICE, "kind": KIND, "driver": "modbus_tcp", "host": "127.0.0.1",
                "port": modbus, "unit_id": 1, "poll_interval_s": 0.2, "report": "period",
                "report_period_s": 0.2, "registers": registers,
            }],
        }
    )  # fmt: skip


def _service(mqtt: int, influx: int, db: str, work: Path) -> CloudService:
    settings = CloudSettings.from_mapping(
        {
            "environment": "test",
            "ingest": {"broker_host": "127.0.0.1", "broker_port": mqtt, "client_id": "ing-tank"},
            "store": {"url": f"influx+http://127.0.0.1:{influx}/{db}"},
            "database": {"url": f"sqlite:///{work / 'akita.db'}"},
        },
        source="dummy kind",
    )
    return CloudService(settings)


async def _until(check: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        await asyncio.sleep(0.1)
    return None


async def main(mqtt: int, influx: int, db: str, work: Path) -> None:
    assert KIND in KINDS, "the plugin is not registered"
    gauge = part(KIND)
    model = TankLevelModel(device_id=DEVICE, key=0)
    assert gauge.registers is not None
    listener = TcpListener(
        "tank", "127.0.0.1", {1: LazySlaveContext(model, gauge.registers, time.time)}
    )
    modbus = await listener.start()
    config = _edge_config(mqtt, modbus, work)
    service = _service(mqtt, influx, db, work)
    service.store.init_db()  # type: ignore[attr-defined]
    service.start()
    meta = work / "meta.json"
    meta.write_text(gateway_meta(config).model_dump_json())
    service.registry.provision(*read_device_list(meta))
    stop = asyncio.Event()
    agent = asyncio.create_task(Agent(config).run(stop))
    try:
        first = await _until(lambda: service.store.latest(DEVICE).get("level"), 30)
        print(json.dumps({"stored_level": first.value if first else None}), flush=True)
        model.level_m = HIGH_M  # the tank fills past the detector's limit
        active = await _until(
            lambda: [a for a in service.alerts.active() if a.kind == "tank_high"], 30
        )
        found = {"alert": active[0].kind, "device": active[0].device_id} if active else {}
        print(json.dumps(found or {"alert": None}), flush=True)
    finally:
        stop.set()
        await asyncio.wait_for(agent, timeout=20)
        service.stop()
        await listener.stop()
    stem = dashboard_parts()[KIND].stem
    print(json.dumps({"dashboard": stem, "model": models()[stem]}))


if __name__ == "__main__":
    mqtt, influx, db, work = sys.argv[1:5]
    asyncio.run(main(int(mqtt), int(influx), db, Path(work)))
