"""The warning-sign kind (issue 15): the sample config drives the simulated sign over a
pty RTU line through a real Mosquitto; lamp, siren and pattern are written and read
back, a refused pattern names its value, and the readings the gateway publishes raise
``sign_lamp_fault`` once the lamp burns out while commanded on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from cloud.detect.engine import DetectorEngine
from edge.agent import Agent
from edge.config import parse_config
from firmware_sim.models.warning_sign import STANDBY_A
from schemas.kinds.warning_sign import LIT_MIN_A
from schemas.wire import reading_adapter
from tests.edge.downlink_peers import Cloud, command
from tests.edge.sign_peers import GW, SIGN, sample_config, underpass_on_a_bus
from tests.servers import Mosquitto


async def until(what: str, cond: Callable[[], Any], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)


def _sign_readings(cloud: Cloud) -> list[dict[str, Any]]:
    return [r for r in cloud.readings() if r["device_id"] == SIGN]


def _last(cloud: Cloud, field: str) -> Any:
    values = [r["values"][field] for r in _sign_readings(cloud) if field in r["values"]]
    return values[-1] if values else None


def test_sign_switches_reads_back_and_a_dark_lamp_is_a_fault(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    cloud = Cloud(mosquitto.port, GW)
    with underpass_on_a_bus() as site:

        async def go() -> dict[str, dict[str, Any]]:
            agent = Agent(parse_config(sample_config(tmp_path, mosquitto.port, site.path)))
            stop = asyncio.Event()
            task = asyncio.create_task(agent.run(stop))
            await until("gateway online", lambda: agent.stats.connected)
            await asyncio.sleep(0.3)  # the SUBSCRIBE goes out right after CONNACK
            cmds = {
                "lamp": command(GW, SIGN, "lamp", {"value": True}, priority="life_safety"),
                "siren": command(GW, SIGN, "siren", {"value": True}, priority="life_safety"),
                "pattern": command(GW, SIGN, "lamp_pattern", {"value": 2}),
                "bad_pattern": command(GW, SIGN, "lamp_pattern", {"value": 7}),
            }
            for c in cmds.values():
                cloud.send(c)
            await until("final results", lambda: all(cloud.final(c["id"]) for c in cmds.values()))
            # lit: the flashing lamp's current is published
            await until(
                "lamp current lit", lambda: (_last(cloud, "lamp_current") or 0) >= LIT_MIN_A
            )
            site.sign.lamp_fails_at = 0.0  # the lamp burns out; its coil still says on
            await until("lamp current dark", lambda: _last(cloud, "lamp_current") == STANDBY_A)
            off = command(GW, SIGN, "lamp", {"value": False}, priority="life_safety")
            cloud.send(off)
            await until("lamp off", lambda: cloud.final(off["id"]) is not None)
            await until("coil off published", lambda: _last(cloud, "lamp_on") is False)
            stop.set()
            await task
            return {name: cloud.final(c["id"]) or {} for name, c in {**cmds, "off": off}.items()}

        got = asyncio.run(go())
    cloud.close()
    assert got["lamp"]["state"] == "done" and got["lamp"]["readback"] == {"lamp_on": True}
    assert got["siren"]["state"] == "done" and got["siren"]["readback"] == {"siren_on": True}
    assert got["pattern"]["state"] == "done" and got["pattern"]["readback"] == {"lamp_pattern": 2}
    assert got["bad_pattern"]["state"] == "rejected"
    assert got["bad_pattern"]["reason"] == "value 7 for 'lamp_pattern' is not one of [0, 1, 2, 3]"
    assert got["off"]["state"] == "done" and got["off"]["readback"] == {"lamp_on": False}
    assert (site.sign.lamp, site.sign.siren, site.sign.pattern) == (False, True, 2)
    assert [w for w in site.sign_unit.writes if w[1] != 1 or w[0] != 6] == [
        (5, 0, [1]), (5, 1, [1]), (6, 0, [2]), (5, 0, [0])]  # fmt: skip

    # the cloud's detector part on what the gateway really published
    engine = DetectorEngine()
    readings = [reading_adapter.validate_python(r) for r in _sign_readings(cloud)]
    faults = [
        (d.active, d.value)
        for d in engine.feed(readings, {})
        if d.kind == "sign_lamp_fault" and d.device_id == SIGN
    ]
    assert faults == [(True, STANDBY_A), (False, STANDBY_A)]


def test_detector_believes_the_current_not_the_coil() -> None:
    engine = DetectorEngine()
    t = datetime.fromisoformat("2026-07-14T03:00:00+00:00")

    def feed(values: dict[str, Any]) -> list[tuple[bool, str]]:
        r = reading_adapter.validate_python(
            {"device_id": "s1", "kind": "warning_sign", "ts": t.isoformat(), "values": values}
        )
        return [(d.active, d.kind) for d in engine.feed([r], {})]

    assert feed({"lamp_on": True}) == []  # current not known yet: not judged
    assert feed({"lamp_current": 1.1}) == []
    assert feed({"lamp_current": 0.1}) == [(True, "sign_lamp_fault")]
    assert feed({"lamp_current": 0.2}) == []  # still dark: no second alert
    assert feed({"lamp_current": 0.6}) == [(False, "sign_lamp_fault")]
    assert feed({"lamp_on": False, "lamp_current": 0.0}) == []  # off and dark is fine
