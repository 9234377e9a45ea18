"""Commands through an uplink outage and a kill -9 (issue 15, acceptance "Offline gateway"
and "Crash"), on a real Mosquitto and a real Modbus server that counts the writes it gets.

Short expiries stand in for the issue's 5-minute outage: what matters is that some
commands expire while the link is down and others do not.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import tomli_w
from pymodbus.datastore import ModbusServerContext

from edge.agent import Agent
from edge.commands import TEST_HOLD_ENV
from edge.config import parse_config
from tests.edge.downlink_peers import Cloud, RecordingSlave, Relay, command
from tests.edge.peers import server_thread, tcp_server
from tests.edge.test_commands import GW, PUMP, pump_config, until
from tests.servers import Mosquitto, wait_for

ROOT = Path(__file__).resolve().parents[2]


def limit_writes(slave: RecordingSlave) -> list[float]:
    """Values written to pump1_current (float32 CDAB at address 4) by function 16."""
    import struct

    out = []
    for fc, address, words in slave.writes:
        if fc == 16 and address == 4:
            out.append(round(struct.unpack(">f", struct.pack(">HH", words[1], words[0]))[0], 3))
    return out


def test_commands_issued_while_the_uplink_is_down(tmp_path: Path, mosquitto: Mosquitto) -> None:
    slave = RecordingSlave()
    ctx = ModbusServerContext(slaves={1: slave}, single=False)
    relay = Relay(mosquitto.port)
    cloud = Cloud(mosquitto.port, GW)

    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with tcp_server(ctx) as port:
            cfg = pump_config(tmp_path, relay.port, port)
            agent = Agent(parse_config(cfg))
            stop = asyncio.Event()
            task = asyncio.create_task(agent.run(stop))
            warm = command(GW, PUMP, "current_limit", {"value": 0.5})
            await until("gateway online", lambda: agent.stats.connected)
            for _ in range(50):  # until the subscription is in place
                cloud.send(warm)
                if cloud.final(warm["id"]):
                    break
                await asyncio.sleep(0.1)
            await until("the first command done", lambda: cloud.final(warm["id"]))
            relay.cut()
            await until("the uplink down", lambda: not agent.stats.connected)
            short = [
                command(GW, PUMP, "current_limit", {"value": 10.0 + i}, lifetime_s=1.0)
                for i in range(3)
            ]
            lasting = [
                command(GW, PUMP, "current_limit", {"value": 20.0 + i}, lifetime_s=300)
                for i in range(3)
            ]
            for c in [*short, *lasting]:
                cloud.send(c)  # the broker keeps them for the gateway's session
            await until("the short ones past expiry", lambda: time.time() > _expiry(short) + 0.2)
            relay.mend()
            await until("every result", lambda: all(cloud.final(c["id"]) for c in short + lasting))
            for c in [*short, *lasting]:
                cloud.send(c)  # the cloud's retry, same id
            await until(
                "the retries answered",
                lambda: (
                    all(len(cloud.states(c["id"])) >= 2 for c in short)
                    and all(len(cloud.states(c["id"])) >= 3 for c in lasting)
                ),
            )
            stop.set()
            await task
        return short, lasting

    short, lasting = asyncio.run(go())
    cloud.close()
    relay.close()
    for c in short:
        final = cloud.final(c["id"])
        assert final is not None and final["state"] == "expired", final
        assert cloud.states(c["id"]) == ["expired", "expired"]
    for c in lasting:
        assert cloud.states(c["id"]) == ["accepted", "done", "done"]
    # executed once each, after the reconnect; the expired ones never reached the device
    assert limit_writes(slave) == [0.5, 20.0, 21.0, 22.0]


def _expiry(cmds: list[dict[str, Any]]) -> float:
    from datetime import datetime

    return max(datetime.fromisoformat(c["expires_at"]).timestamp() for c in cmds)


def _start_edge(config: Path, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "akita", "edge", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )


def _state(db: Path, command_id: str) -> str | None:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT state FROM commands WHERE id = ?", (command_id,)).fetchone()
        return row[0] if row else None
    finally:
        con.close()


def test_kill_9_between_acknowledging_and_executing(tmp_path: Path, mosquitto: Mosquitto) -> None:
    slave = RecordingSlave()
    ctx = ModbusServerContext(slaves={1: slave}, single=False)
    cloud = Cloud(mosquitto.port, GW)
    log = tmp_path / "edge.log"
    with server_thread(ctx) as modbus_port:
        config = tmp_path / "edge.toml"
        config.write_text(tomli_w.dumps(pump_config(tmp_path, mosquitto.port, modbus_port)))
        edge = _start_edge(config, log, {TEST_HOLD_ENV: "120"})
        try:
            cmd = command(GW, PUMP, "current_limit", {"value": 21.5})
            deadline = time.monotonic() + 30
            while not cloud.states(cmd["id"]) and time.monotonic() < deadline:
                cloud.send(cmd)  # until the gateway has subscribed; repeats are harmless
                time.sleep(0.3)
            wait_for("accepted", lambda: cloud.states(cmd["id"])[:1] == ["accepted"])
            # committed and acknowledged, held before execution by the test hook
            assert _state(tmp_path / "spool.db", cmd["id"]) == "accepted"
            edge.send_signal(signal.SIGKILL)
            edge.wait(10)
            assert limit_writes(slave) == []  # not executed before the crash
            edge = _start_edge(config, log, {})
            wait_for("done after the restart", lambda: cloud.final(cmd["id"]) is not None, 30)
            final = cloud.final(cmd["id"])
            assert final is not None and final["state"] == "done", final
            assert final["readback"] == {"pump1_current": 21.5}
            cloud.send(cmd)  # delivered again: answered, not executed
            wait_for("the repeat answered", lambda: cloud.states(cmd["id"]).count("done") >= 2)
            assert limit_writes(slave) == [21.5]  # exactly once
            assert _state(tmp_path / "spool.db", cmd["id"]) == "done"
        finally:
            edge.send_signal(signal.SIGTERM)
            edge.wait(20)
            cloud.close()
    assert "command_test_hold" in log.read_text()  # the hook ran only in the first process
