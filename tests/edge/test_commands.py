"""The downlink at the edge (issue 15) against a real Mosquitto and a real Modbus server.

A small MQTT client plays the cloud: it publishes commands on the gateway's ``cmd`` topic
and reads its ``cmd/result``. The Modbus server records every write it receives, so
"executed once" and "never executed" are counted at the device.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymodbus.datastore import ModbusServerContext

from edge.agent import Agent
from edge.config import parse_config
from edge.errors import ConfigError
from schemas.commands import CommandResult
from tests.edge.downlink_peers import Cloud, RecordingSlave, command
from tests.edge.peers import tcp_server
from tests.servers import Mosquitto

GW = "gw-cmd"
PUMP = "mp-01"


def pump_config(tmp: Path, mqtt_port: int, modbus_port: int) -> dict[str, Any]:
    return {
        "gateway": {"id": GW, "spool_path": str(tmp / "spool.db"), "batch_max_delay_s": 0.1},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "reconnect_max_s": 1.0},
        "devices": [
            {
                "id": PUMP,
                "kind": "manhole_pump",
                "driver": "modbus_tcp",
                "host": "127.0.0.1",
                "port": modbus_port,
                "unit_id": 1,
                "poll_interval_s": 1.0,
                "registers": [
                    {"field": "level", "address": 0, "type": "float32"},
                    {"field": "pump1_current", "address": 4, "type": "float32", "order": "CDAB",
                     "writable": True},
                    {"field": "fault_code", "address": 10, "type": "uint16", "writable": True},
                    {"field": "pump1_running", "function": "coil", "address": 0, "type": "bool",
                     "writable": True},
                    {"field": "pump2_running", "function": "coil", "address": 1, "type": "bool",
                     "writable": True},
                ],
                "actions": [
                    {"name": "pump1", "field": "pump1_running"},
                    {"name": "pump2", "field": "pump2_running", "write_multiple": True},
                    {"name": "current_limit", "field": "pump1_current", "min": 0, "max": 50},
                    {"name": "fault", "field": "fault_code", "allowed": [0, 7]},
                    {"name": "set_level", "field": "level", "min": 0, "max": 30},
                ],
            }
        ],
    }  # fmt: skip


async def until(what: str, cond: Callable[[], Any], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)


def test_writes_read_back_and_every_refusal_names_its_reason(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    slave = RecordingSlave(frozen=frozenset({10}))  # fault_code ignores writes
    ctx = ModbusServerContext(slaves={1: slave}, single=False)
    cloud = Cloud(mosquitto.port, GW)

    async def go() -> None:
        async with tcp_server(ctx) as port:
            agent = Agent(parse_config(pump_config(tmp_path, mosquitto.port, port)))
            stop = asyncio.Event()
            task = asyncio.create_task(agent.run(stop))
            await until("gateway online", lambda: agent.stats.connected)
            await asyncio.sleep(0.3)  # the SUBSCRIBE goes out right after CONNACK
            ok = {
                "pump1": command(GW, PUMP, "pump1", {"value": True}),
                "pump2": command(GW, PUMP, "pump2", {"value": True}),
                "limit": command(GW, PUMP, "current_limit", {"value": 12.5}),
                "fault": command(GW, PUMP, "fault", {"value": 7}),
            }
            refused = {
                "not_writable": command(GW, PUMP, "set_level", {"value": 1.0}),
                "out_of_range": command(GW, PUMP, "current_limit", {"value": 80.0}),
                "not_allowed": command(GW, PUMP, "fault", {"value": 3}),
                "unknown": command(GW, PUMP, "open_valve", {"value": True}),
                "wrong_type": command(GW, PUMP, "pump1", {"value": 1}),
                "other_gateway": command("gw-b", PUMP, "pump1", {"value": False}),
                "no_device": command(GW, "mp-99", "pump1", {"value": False}),
                "late": command(
                    GW, PUMP, "pump1", {"value": False},
                    issued=datetime.now(UTC) - timedelta(minutes=10), lifetime_s=60,
                ),
            }  # fmt: skip
            for c in [*ok.values(), *refused.values()]:
                cloud.send(c)
            cloud.send(b"{not json")
            cloud.send(json.dumps({"id": "not-a-uuid", "action": "x"}).encode())
            everything = [*ok.values(), *refused.values()]
            await until("every final result", lambda: all(cloud.final(c["id"]) for c in everything))
            writes_before = list(slave.writes)
            cloud.send(ok["pump1"])  # the cloud's re-delivery of a command already done
            await until("the repeat answered", lambda: len(cloud.states(ok["pump1"]["id"])) == 3)
            assert agent.commands is not None
            stats = agent.commands.stats
            stop.set()
            await task
        return writes_before, stats, ok, refused

    writes, stats, ok, refused = asyncio.run(go())
    cloud.close()
    for r in cloud.results:
        CommandResult.model_validate(r)  # every result is a valid wire message
    assert slave.writes == writes  # the repeat executed nothing
    assert cloud.states(ok["pump1"]["id"]) == ["accepted", "done", "done"]
    # functions 5 (coil), 15 (coil, write_multiple), 16 (float32 CDAB), 6 (uint16)
    assert sorted(fc for fc, _a, _v in writes) == [5, 6, 15, 16]
    assert (16, 4, [0, 0x4148]) in writes  # 12.5 = 0x41480000, low word first
    got = {name: cloud.final(c["id"]) for name, c in {**ok, **refused}.items()}
    assert got["pump1"]["state"] == "done" and got["pump1"]["readback"] == {"pump1_running": True}
    assert got["pump2"]["state"] == "done" and got["pump2"]["readback"] == {"pump2_running": True}
    assert got["limit"]["state"] == "done" and got["limit"]["readback"] == {"pump1_current": 12.5}
    # the device kept its old value: executed, read back, and reported as failed
    assert got["fault"]["state"] == "failed" and got["fault"]["readback"] == {"fault_code": 0}
    assert got["fault"]["reason"] == "wrote 7 but read back 0"
    expect = {
        "not_writable": "register 'level' (holding 0) is not marked writable",
        "out_of_range": "value 80.0 for 'pump1_current' is out of range 0.0..50.0",
        "not_allowed": "value 3 for 'fault_code' is not one of [0, 7]",
        "unknown": "unknown action 'open_valve' for device 'mp-01' (accepts: pump1, pump2, "
        "current_limit, fault, set_level)",
        "wrong_type": "value 1 for 'pump1_running': a coil takes true or false",
        "other_gateway": "gateway_id 'gw-b' is not this gateway ('gw-cmd')",
        "no_device": "device_id 'mp-99' is not on this gateway",
    }
    for name, reason in expect.items():
        assert (got[name]["state"], got[name]["reason"]) == ("rejected", reason), name
        assert cloud.states(refused[name]["id"]) == ["rejected"], name  # never accepted
    assert got["late"]["state"] == "expired" and "arrived after expires_at" in got["late"]["reason"]
    assert stats.unparsable == 2 and stats.repeated == 1
    assert (stats.accepted, stats.done, stats.failed, stats.rejected, stats.expired) == (
        4, 3, 1, 7, 1,
    )  # fmt: skip


def test_config_errors_name_the_line_and_the_reason(tmp_path: Path) -> None:
    from edge.config import load_config

    base = """[gateway]
id = "gw"

[[devices]]
id = "mp"
kind = "manhole_pump"
driver = "modbus_tcp"
host = "h"
port = 502
unit_id = 1

  [[devices.registers]]
  field = "level"
  function = "input"
  address = 0
  type = "float32"

  [[devices.registers]]
  field = "pump1_running"
  function = "coil"
  address = 0
  type = "bool"
  writable = true

  [[devices.actions]]
  name = "ok"
  field = "pump1_running"

  [[devices.actions]]
"""
    cases = {
        'name = "lvl"\n  field = "level"\n': ("31:3", "'level' is read-only (function input)"),
        'name = "p"\n  field = "pump1_running"\n  min = 0\n  max = 1\n': ("32:3", "use 'allowed'"),
        'name = "x"\n  field = "nope"\n': ("31:3", "no register entry for field 'nope'"),
        'name = "ok"\n  field = "pump1_running"\n': ("30:3", "duplicate action 'ok'"),
    }
    for body, (at, message) in cases.items():
        path = tmp_path / "edge.toml"
        path.write_text(base + "  " + body)
        with pytest.raises(ConfigError) as err:
            load_config(path)
        assert f"edge.toml:{at}:" in str(err.value), str(err.value)
        assert message in str(err.value), str(err.value)
