"""Run in a subprocess with ``AKITA_KIND_PLUGINS=tests.kinds.tank_level``: a gateway
polling a Modbus TCP gauge of the dummy kind, the cloud service (ingest, InfluxDB,
detectors, alerts) on one broker. Prints one JSON line per event it waited for.

    python -m tests.kinds.run_pipeline MQTT_PORT INFLUX_PORT DB MODBUS_PORT WORKDIR
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from cloud.service import CloudService
from cloud.settings import CloudSettings
from edge.agent import Agent
from edge.config import parse_config
from schemas.kinds import KINDS

DEVICE = "tank-1"


async def main(mqtt: int, influx: int, db: str, modbus: int, work: Path) -> None:
    assert "tank_level" in KINDS, "the plugin is not registered"
    config = parse_config(
        {
            "gateway": {"id": "gw-tank", "spool_path": str(work / "spool.db"),
                        "batch_max_delay_s": 0.05},
            "mqtt": {"host": "127.0.0.1", "port": mqtt},
            "devices": [{
                "id": DEVICE, "kind": "tank_level", "driver": "modbus_tcp", "host": "127.0.0.1",
                "port": modbus, "unit_id": 1, "poll_interval_s": 0.2, "report": "period",
                "report_period_s": 0.2,
                "registers": [{"field": "level", "address": 0, "type": "uint16", "scale": 0.01}],
            }],
        }
    )  # fmt: skip
    settings = CloudSettings.from_mapping(
        {
            "environment": "test",
            "ingest": {"broker_host": "127.0.0.1", "broker_port": mqtt, "client_id": "ing-tank"},
            "store": {"url": f"influx+http://127.0.0.1:{influx}/{db}"},
            "database": {"url": f"sqlite:///{work / 'akita.db'}"},
        },
        source="dummy kind",
    )
    service = CloudService(settings)
    service.store.init_db()  # type: ignore[attr-defined]
    service.start()
    from cloud.provisioning import read_device_list
    from edge.uplink import gateway_meta

    meta = work / "meta.json"
    meta.write_text(gateway_meta(config).model_dump_json())
    service.registry.provision(*read_device_list(meta))
    stop = asyncio.Event()
    agent = asyncio.create_task(Agent(config).run(stop))
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            active = [a for a in service.alerts.active() if a.kind == "tank_high"]
            if active:
                print(json.dumps({"alert": active[0].kind, "device": active[0].device_id}))
                break
            await asyncio.sleep(0.1)
        else:
            print(json.dumps({"alert": None}))
    finally:
        stop.set()
        await asyncio.wait_for(agent, timeout=20)
        service.stop()


if __name__ == "__main__":
    mqtt, influx, db, modbus, work = sys.argv[1:6]
    asyncio.run(main(int(mqtt), int(influx), db, int(modbus), Path(work)))
