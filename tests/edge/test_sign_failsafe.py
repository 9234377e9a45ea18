"""Fail-safe at the underpass (issue 15, item 7): the cloud's flood rules pushed to the
gateway as a ``rules_update``, the uplink cut before the water rises, the lamp and siren
switched by the gateway itself (the simulator's coils), the cloud's view right after the
reconnect; and the sign's own fallback once the gateway dies (its heartbeat stops)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import edge.agent
from cloud.commands.config import CommandSettings
from cloud.commands.edge_rules import edge_flood_rules
from cloud.detect.config import FloodConfig
from edge.agent import Agent
from edge.config import Device, EdgeConfig, parse_config
from edge.drivers import PollDriver, StreamDriver
from edge.failsafe_store import FailSafeStore
from firmware_sim.models.warning_sign import WarningSignModel
from schemas.edge_rules import RULES_UPDATE, EdgeFloodRule
from schemas.kinds.warning_sign import LIT_MIN_A
from tests.edge.downlink_peers import Cloud, Relay, command
from tests.edge.sign_peers import GW, SENSOR, SIGN, sample_config, underpass_on_a_bus
from tests.edge.test_warning_sign import until
from tests.servers import Mosquitto, free_port


def _rule_params() -> dict[str, Any]:
    """What the cloud derives from its own lamp (警戒) and siren (危険) rules."""
    settings = CommandSettings.model_validate(
        {
            "rules": [
                {"id": "lamp", "type": "device_action", "alert_kind": "flood_stage",
                 "source": SENSOR, "min_stage": "warning", "target": SIGN, "action": "lamp",
                 "params": {"value": True}, "off_params": {"value": False}},
                {"id": "siren", "type": "device_action", "alert_kind": "flood_stage",
                 "source": SENSOR, "min_stage": "danger", "target": SIGN, "action": "siren",
                 "params": {"value": True}, "off_params": {"value": False}},
            ]
        }
    )  # fmt: skip
    return edge_flood_rules(settings, FloodConfig(), {})[SIGN].params()


def _last_sign(cloud: Cloud) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for r in cloud.readings():
        if r["device_id"] == SIGN:
            state.update(r["values"])
    return state


def test_uplink_down_the_gateway_switches_the_sign_itself(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    relay = Relay(mosquitto.port)
    cloud = Cloud(mosquitto.port, GW)
    params = _rule_params()
    assert (params["lamp_on_cm"], params["siren_on_cm"], params["off_below_cm"]) == (20, 30, 8)
    push = command(GW, SIGN, RULES_UPDATE, params, priority="high")
    with underpass_on_a_bus() as site:

        async def go() -> None:
            agent = Agent(parse_config(sample_config(tmp_path, relay.port, site.path)))
            stop = asyncio.Event()
            task = asyncio.create_task(agent.run(stop))
            await until("gateway online", lambda: agent.stats.connected)
            for _ in range(50):  # until the subscription is in place; same id each time
                cloud.send(push)
                if cloud.final(push["id"]):
                    break
                await asyncio.sleep(0.1)
            await until("rules installed", lambda: cloud.final(push["id"]))
            site.sensor.depth_mm = 150  # 15 cm, 注意: below the lamp's stage
            await until("15 cm seen", lambda: (_last_sensor(cloud) or 0) >= 15)
            assert not site.sign.lamp  # the cloud's rules act while the uplink is up
            relay.cut()
            await until("the uplink down", lambda: not agent.stats.connected)
            site.sensor.depth_mm = 250  # 25 cm: 警戒
            await until("lamp coil on (local rule)", lambda: site.sign.lamp)
            assert not site.sign.siren
            site.sensor.depth_mm = 350  # 35 cm: 危険
            await until("siren coil on (local rule)", lambda: site.sign.siren)
            relay.mend()
            await until(
                "the cloud sees lamp and siren on, lit",
                lambda: _cloud_sees_lit(_last_sign(cloud)),
            )
            stop.set()
            await task

        asyncio.run(go())
    cloud.close()
    relay.close()
    final = cloud.final(push["id"])
    assert final is not None and final["state"] == "done"
    assert final["readback"] == {
        "rules_version": params["version"],
        "rules_digest": params["digest"],
    }
    assert [r["id"] for r in cloud.results if r["id"] != push["id"]] == []  # no command used
    switched = [w for w in site.sign_unit.writes if w[0] == 5]
    assert switched == [(5, 0, [1]), (5, 1, [1])]  # once each, lamp first


def test_a_sign_read_that_began_before_the_local_write_does_not_undo_it(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """The sign's poll reads its coils, the local rule's write (life-safety rank) goes
    ahead of the poll's next block, and the poll ends after the write's read-back holding
    the coil as it was before. Taken as the coil's state, that read made the next depth
    reading write the lamp again (seen in CI: the lamp coil written twice)."""
    cfg = sample_config(tmp_path, free_port(), "")  # no broker: the uplink stays down
    store = FailSafeStore(Path(cfg["gateway"]["spool_path"]))
    store.save(SIGN, EdgeFloodRule.model_validate(_rule_params()))
    store.close()
    hold = {"armed": False, "released": 0.0}
    sensor_reads: list[float] = []
    real_create = edge.agent.create

    def create(dev: Device, config: EdgeConfig) -> PollDriver | StreamDriver:
        drv = real_create(dev, config)
        real_read = drv.read  # type: ignore[union-attr]

        async def read() -> dict[str, Any]:
            values: dict[str, Any] = await real_read()
            if dev.id == SENSOR:
                sensor_reads.append(time.monotonic())
            elif hold["armed"] and values.get("lamp_on") is False:
                hold["armed"] = False  # this poll's coil block was read before the write
                await until("the local write", lambda: site.sign.lamp)
                await asyncio.sleep(0.3)  # past the write's read-back
                hold["released"] = time.monotonic()
            return values

        drv.read = read  # type: ignore[union-attr]
        return drv

    monkeypatch.setattr(edge.agent, "create", create)
    with underpass_on_a_bus() as site:
        cfg["buses"][0]["port"] = site.path

        async def go() -> None:
            agent = Agent(parse_config(cfg))
            stop = asyncio.Event()
            task = asyncio.create_task(agent.run(stop))
            await until("the sensor polled", lambda: len(sensor_reads) >= 2)
            hold["armed"] = True
            await until("a sign read held", lambda: not hold["armed"])
            site.sensor.depth_mm = 250  # 25 cm: 警戒, while that read waits
            await until("the held read returned", lambda: hold["released"] > 0)
            after = lambda: [t for t in sensor_reads if t > hold["released"]]  # noqa: E731
            await until("three depth readings after it", lambda: len(after()) >= 3)
            stop.set()
            await task

        asyncio.run(go())
    # (the rule may first write both coils off: at 0 cm, before the sign's first poll)
    assert [w for w in site.sign_unit.writes if w[0] == 5 and w[2] == [1]] == [(5, 0, [1])]


def _last_sensor(cloud: Cloud) -> float | None:
    depths = [
        r["values"]["depth"]
        for r in cloud.readings()
        if r["device_id"] == SENSOR and "depth" in r["values"]
    ]
    return depths[-1] if depths else None


def _cloud_sees_lit(state: dict[str, Any]) -> bool:
    return (
        state.get("lamp_on") is True
        and state.get("siren_on") is True
        and (state.get("lamp_current") or 0) >= LIT_MIN_A
    )


def test_a_dead_gateway_hands_the_lamp_to_the_float_switch(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    wet = {"now": False}
    sign = WarningSignModel(device_id=SIGN, key=0, watchdog_s=1.5, float_wet=lambda t: wet["now"])
    with underpass_on_a_bus(sign) as site:

        async def go() -> None:
            agent = Agent(parse_config(sample_config(tmp_path, mosquitto.port, site.path)))
            stop = asyncio.Event()
            task = asyncio.create_task(agent.run(stop))
            await until("three heartbeats", lambda: sign.heartbeats >= 3)
            wet["now"] = True
            await until("more heartbeats while wet", lambda: sign.heartbeats >= 6)
            # alive: the coils rule, the float switch does not
            assert not sign.fallback(time.monotonic())
            assert sign.outputs(time.monotonic())[0] is False
            stop.set()  # the gateway dies: no more heartbeats
            await task

        asyncio.run(go())
        beats = sign.heartbeats
        wait_until_fallback(sign)
    assert sign.heartbeats == beats
    assert sign.outputs(time.monotonic()) == (True, False, 2)  # lamp on, fast flash, silent
    assert all(w[:2] == (6, 1) and w[2] == [1] for w in site.sign_unit.writes if w[1] == 1)


def wait_until_fallback(sign: WarningSignModel) -> None:
    deadline = time.monotonic() + 20
    while not sign.fallback(time.monotonic()):
        assert time.monotonic() < deadline, "the sign's watchdog never took over"
        time.sleep(0.05)
