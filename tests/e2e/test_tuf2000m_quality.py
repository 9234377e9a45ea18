"""Issue 16 acceptance, wire and cloud half: the TUF-2000M sample config against the
simulated meter (RTU on a pty, wire time held) -> edge agent -> Mosquitto -> cloud ingest
-> InfluxDB, detectors and the alert lifecycle.

- Every value the meter has arrives in the store as the meter holds it: flow and the
  totaliser as the kind's fields, the totaliser's fraction, T1, T2, the error bits, each
  named error bit and the signal quality as the device's declared extra fields.
- An error bit marked ``invalidates = ["flow"]`` turns the flow into a quality flag
  (``flow__quality``), never a number, and a ``bad_value`` alert after the configured time.
- NaN, Inf and an out-of-range flow, in turn: each is a flag with its reason, none is
  stored as a number, and the flag clears (``ok``) when the meter reads right again.
"""

from __future__ import annotations

import asyncio
import math
import time
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloud.provisioning import read_device_list
from cloud.service import CloudService
from cloud.settings import CloudSettings
from edge.agent import Agent
from edge.config import parse_config
from firmware_sim.tuf2000m import Tuf2000m
from tests.firmware_sim.test_tuf2000m import SAMPLE, f32, meter_on_a_bus
from tests.servers import Influx, Mosquitto

DEVICE = "wb-tuf-inlet"
BAD_VALUE_AFTER_S = 1.5


def edge_config(tmp: Path, port: str, mosquitto: Mosquitto) -> Any:
    data = tomllib.loads(SAMPLE.read_text(encoding="utf-8"))
    data["gateway"]["spool_path"] = str(tmp / "spool.db")
    data["gateway"]["batch_max_delay_s"] = 0.05
    data["gateway"]["health_interval_s"] = 60.0
    data["mqtt"] = {"host": "127.0.0.1", "port": mosquitto.port}
    data["buses"][0]["port"] = port
    dev = data["devices"][0]
    dev.update(poll_interval_s=0.25, timeout_s=1.0, report="period", report_period_s=0.25)
    return parse_config(data, source="tuf2000m.toml (test)")


def cloud_settings(tmp: Path, mosquitto: Mosquitto, influx: Influx, db: str, unique: str) -> Any:
    return CloudSettings.from_mapping(
        {
            "environment": "test",
            "ingest": {
                "broker_host": "127.0.0.1",
                "broker_port": mosquitto.port,
                "client_id": f"ingest-{unique}",
                "group": f"g{unique}",
            },
            "store": {"url": f"influx+http://127.0.0.1:{influx.port}/{db}"},
            "database": {"url": f"sqlite:///{tmp / 'akita.db'}"},
            "detect": {"quality": {"bad_value_after_s": BAD_VALUE_AFTER_S}},
        },
        source="e2e",
    )


async def until(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.1)


def flows_since(influx: Influx, db: str, since: datetime) -> list[Any]:
    q = f"SELECT flow FROM water_block WHERE device = '{DEVICE}' AND time >= '{since.isoformat()}'"
    series = influx.query(q, db)["results"][0].get("series", [])
    return [v[1] for s in series for v in s["values"]]


def test_tuf2000m_values_flags_and_bad_value_alert(
    tmp_path: Path, mosquitto: Mosquitto, influx: Influx, influx_db: str, unique: str
) -> None:
    asyncio.run(_scenario(tmp_path, mosquitto, influx, influx_db, unique))


async def _scenario(tmp: Path, mosquitto: Mosquitto, influx: Influx, db: str, unique: str) -> None:
    meter = Tuf2000m()
    service = CloudService(cloud_settings(tmp, mosquitto, influx, db, unique))
    service.store.init_db()  # type: ignore[attr-defined]  # akita cloud init-db
    service.start()
    stop = asyncio.Event()
    agent: asyncio.Task[None] | None = None
    try:
        # the cloud learns the device and its extra fields from the same file the gateway runs
        gateway, devices = read_device_list(SAMPLE)
        service.registry.provision(gateway, devices)
        with meter_on_a_bus(meter) as (port, _ctx):
            agent = asyncio.create_task(Agent(edge_config(tmp, port, mosquitto)).run(stop))
            latest: Callable[[], dict[str, Any]] = lambda: {  # noqa: E731
                k: p.value for k, p in service.store.latest(DEVICE).items()
            }
            expected = {
                "flow": f32(-0.8598),
                "totaliser": 23.0,
                "totaliser_fraction": 0.5,
                "temperature_t1": f32(7.101),
                "temperature_t2": 5.5,
                "error_bits": 0.0,
                "signal_quality": 85.0,
                "fault_no_signal": False,
                "fault_low_signal": False,
                "fault_poor_signal": False,
                "fault_pipe_empty": False,
                "fault_hardware": False,
            }
            await until("every value of the meter in the store", lambda: latest() == expected)

            # an error bit that invalidates the flow: a flag, then the bad_value alert
            since = datetime.now(UTC)
            meter.error_bits = 0b1  # no signal
            await until(
                "the flow's quality flag",
                lambda: latest().get("flow__quality") == "device error fault_no_signal",
            )
            await until(
                "the bad_value alert",
                lambda: any(a.kind == "bad_value" for a in service.alerts.active()),
                timeout=BAD_VALUE_AFTER_S + 20,
            )
            (alert,) = [a for a in service.alerts.active() if a.kind == "bad_value"]
            assert alert.device_id == DEVICE and alert.title == "No valid value: flow"
            assert "flow: device error fault_no_signal" in (alert.message or "")
            assert latest()["fault_no_signal"] is True and latest()["error_bits"] == 1.0
            meter.error_bits = 0
            await until("the flag's ok", lambda: latest().get("flow__quality") == "ok")
            assert flows_since(influx, db, since)[:1] != [], "flow again after the ok"

            # NaN, Inf and out of range in turn: a flag with its reason, never a number
            for bad, reason in (
                (math.nan, "not a number"),
                (math.inf, "infinite"),
                (60000.0, "out of range (-5000..50000)"),
            ):
                await until("a good flow", lambda: latest().get("flow__quality") == "ok")
                meter.flow = bad
                await until(f"flag {reason}", lambda r=reason: latest().get("flow__quality") == r)
                since = datetime.now(UTC)
                await asyncio.sleep(0.6)  # a few more polls while it is bad
                assert flows_since(influx, db, since) == [], f"{reason}: stored as a number"
                meter.flow = -0.8598
            await until("the flag's ok", lambda: latest().get("flow__quality") == "ok")
            stored = flows_since(influx, db, datetime.fromtimestamp(0, UTC))
            assert stored and all(v == f32(-0.8598) for v in stored), set(stored)
    finally:
        stop.set()
        if agent is not None:
            await asyncio.wait_for(agent, timeout=20)
        service.stop()
