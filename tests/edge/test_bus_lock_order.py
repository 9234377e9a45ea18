"""Issue 15: "commands to a device on a busy RTU bus take the bus lock between polls; a
command waits for no more than one poll cycle", shown by ORDER on the line, not by time.

Six slow devices (each read answered after a pause) share one pty RTU bus, polled back
to back by the real gateway, so at any moment most of them wait for the bus lock. The
bus records every request it decodes, in order. A command (priority ``normal``, the
lowest a command has) arrives; the index of the line's log at that moment is taken from
the gateway's own ``command_accepted`` log record. The write must come before any device
is read a second time, and after at most the exchange on the line plus one handed the
bus in the instant before the command asked for it: never behind the polls queued."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pymodbus.datastore import ModbusSlaveContext

from edge.agent import Agent
from edge.config import parse_config
from edge.drivers.modbus.driver import ModbusDriver
from firmware_sim.servers.modbus import RtuPtyBus
from tests.edge.downlink_peers import Cloud, command
from tests.edge.peers import StrictBlock
from tests.edge.test_warning_sign import until
from tests.servers import Mosquitto

GW = "gw-busy-bus"
UNITS = list(range(1, 7))  # six devices on the line
TARGET = "mp-3"  # the one the command goes to
READ_PAUSE_S = 0.08  # each read's answer waits this long: slow devices
READS = frozenset({1, 2, 3, 4})  # function codes of reads


class SlowUnit(ModbusSlaveContext):
    """A slow device whose every request goes into the bus's shared log, in order."""

    def __init__(self, unit: int, log: list[tuple[int, int]]) -> None:
        super().__init__(
            di=StrictBlock(0, [False] * 11),
            co=StrictBlock(0, [False] * 11),
            hr=StrictBlock(0, [0] * 11),
            ir=StrictBlock(0, [0] * 11),
        )
        self.unit = unit
        self.log = log

    async def async_getValues(  # type: ignore[override]
        self, fc_as_hex: int, address: int, count: int = 1
    ) -> Sequence[int | bool] | int:
        if fc_as_hex in READS:
            self.log.append((self.unit, fc_as_hex))
            await asyncio.sleep(READ_PAUSE_S)
        return super().getValues(fc_as_hex, address, count)

    async def async_setValues(  # type: ignore[override]
        self, fc_as_hex: int, address: int, values: Sequence[int | bool]
    ) -> int | None:
        self.log.append((self.unit, fc_as_hex))
        return super().setValues(fc_as_hex, address, values)  # type: ignore[func-returns-value]


@contextmanager
def busy_bus(log: list[tuple[int, int]]) -> Iterator[str]:
    """The six slow devices behind one pty, served from their own thread and loop."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        bus = RtuPtyBus("busy", {u: SlowUnit(u, log) for u in UNITS})
        state["path"] = await bus.start()
        state["loop"], state["stop"] = asyncio.get_running_loop(), asyncio.Event()
        ready.set()
        await state["stop"].wait()
        await bus.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield str(state["path"])
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(10)


def config(tmp: Path, mqtt_port: int, bus_path: str) -> dict[str, Any]:
    devices: list[dict[str, Any]] = []
    for u in UNITS:
        dev_id = f"mp-{u}"
        registers: list[dict[str, Any]] = [{"field": "level", "address": 0, "type": "uint16"}]
        dev: dict[str, Any] = {
            "id": dev_id,
            "kind": "manhole_pump",
            "driver": "modbus_rtu",
            "bus": "line",
            "unit_id": u,
            "poll_interval_s": 0.1,  # far below a cycle: always another poll waiting
            "timeout_s": 1.0,
            "registers": registers,
        }
        if dev_id == TARGET:  # one block (holding 0-1): one request per poll
            registers.append(
                {"field": "fault_code", "address": 1, "type": "uint16", "writable": True}
            )
            dev["actions"] = [{"name": "fault", "field": "fault_code", "allowed": [0, 7]}]
        devices.append(dev)
    return {
        "gateway": {"id": GW, "spool_path": str(tmp / "spool.db"), "batch_max_delay_s": 0.1},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "reconnect_max_s": 1.0},
        "buses": [{"name": "line", "port": bus_path, "baudrate": 9600}],
        "devices": devices,
    }


class Arrival(logging.Handler):
    """At the gateway's ``command_accepted``: how far the line's log had got, and how
    many polls were waiting for the bus lock."""

    def __init__(self, log: list[tuple[int, int]], agent: Agent) -> None:
        super().__init__()
        self.log = log
        self.agent = agent
        self.at: int | None = None
        self.queued: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.at is None and record.getMessage().startswith("command_accepted"):
            self.at = len(self.log)
            drv = self.agent._drivers[TARGET]
            assert isinstance(drv, ModbusDriver) and drv._link is not None
            self.queued = len(drv._link.lock._waiters)


def test_a_command_on_a_busy_rtu_bus_goes_before_the_queued_polls(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    log: list[tuple[int, int]] = []
    cloud = Cloud(mosquitto.port, GW)
    cmd = command(GW, TARGET, "fault", {"value": 7}, priority="normal")
    commands_log = logging.getLogger("edge.commands")
    with busy_bus(log) as path:
        agent = Agent(parse_config(config(tmp_path, mosquitto.port, path)))
        arrival = Arrival(log, agent)
        commands_log.addHandler(arrival)
        previous_level = commands_log.level
        commands_log.setLevel(logging.INFO)

        async def go() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(agent.run(stop))
            await until("gateway online", lambda: agent.stats.connected)
            await until("three cycles of reads", lambda: len(log) >= 3 * len(UNITS))
            for _ in range(50):  # until the subscription is in place; same id each time
                cloud.send(cmd)
                if cloud.final(cmd["id"]):
                    break
                await asyncio.sleep(0.2)
            await until("the command done", lambda: cloud.final(cmd["id"]) is not None)
            await until("a cycle after it", lambda: len(log) >= (arrival.at or 0) + 12)
            stop.set()
            await task

        try:
            asyncio.run(go())
        finally:
            commands_log.removeHandler(arrival)
            commands_log.setLevel(previous_level)
    cloud.close()
    final = cloud.final(cmd["id"])
    assert final is not None and final["state"] == "done", final
    assert final["readback"] == {"fault_code": 7}
    assert arrival.at is not None and arrival.queued is not None
    # the bus was busy: polls of the other devices were waiting when the command came
    assert arrival.queued >= 3, arrival.queued
    before = log[: arrival.at]
    assert {u for u, _ in before} == set(UNITS)  # every device polled, back to back
    after = log[arrival.at :]
    writes = [i for i, (_u, fc) in enumerate(after) if fc == 6]
    assert len(writes) == 1, after  # executed once
    ahead = after[: writes[0]]
    assert all(fc in READS for _u, fc in ahead), ahead
    # not behind the queued polls: at most the exchange on the line and one handed the
    # bus as the command arrived (with a first-come lock it would be every poll queued)
    assert len(ahead) <= 2, (ahead, arrival.queued)
    # the bound: before the cycle running at its arrival is followed by another
    units_ahead = [u for u, _ in ahead]
    assert len(units_ahead) == len(set(units_ahead)), ahead  # no device read twice
    assert after[writes[0]] == (3, 6)
    assert after[writes[0] + 1] == (3, 3)  # its read-back, in the same hold of the bus
