"""AKCU notices (issue 15) from the cloud to call units over a pty, the unit side played by
the firmware_sim line simulator: acknowledged on receipt, "seen" presses coming back with
the notice id, and a button press that overtakes 500 queued notices.

The line runs at 115200 baud here so 500 notices take seconds; the pacing is the same
at 9600 (bench/downlink measures that).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from edge.agent import Agent
from edge.config import parse_config
from firmware_sim.models.callunit import CallUnitModel
from firmware_sim.servers.akcu import AkcuLine, format_message
from firmware_sim.servers.endpoints import PtyEndpoint
from tests.edge.downlink_peers import Cloud, command
from tests.edge.test_commands import until
from tests.servers import Mosquitto

GW = "gw-cu"
UNITS = 500
TEXT = "熱中症警戒アラート。水分をとり、エアコンを使ってください"


def unit_config(tmp: Path, mqtt_port: int, path: str) -> dict[str, Any]:
    return {
        "gateway": {"id": GW, "spool_path": str(tmp / "spool.db"), "batch_max_delay_s": 0.2},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
        "devices": [
            {
                "id": f"cu-{u:04d}",
                "kind": "call_unit",
                "driver": "call_unit",
                "serial_port": path,
                "baudrate": 115200,
                "unit_id": u,
                "poll_interval_s": 3600.0,
                "actions": [{"name": "notice"}],
            }
            for u in range(1, UNITS + 1)
        ],
    }


def notice(unit: int, nid: str, priority: str = "normal") -> dict[str, Any]:
    params = {"notice_id": nid, "kind": "heat", "level": 3, "text": TEXT}
    return command(GW, f"cu-{unit:04d}", "notice", params, priority=priority)


def test_notices_are_acknowledged_seen_and_never_starve_a_button(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    cloud = Cloud(mosquitto.port, GW)
    heard: list[bytes] = []  # every line the units received, in order

    async def go() -> tuple[AkcuLine, dict[str, Any], list[dict[str, Any]]]:
        ep = PtyEndpoint("akcu")
        await ep.start()
        models = {u: CallUnitModel(f"cu-{u:04d}", u, unit_id=u, t0=1e12) for u in range(1, 501)}
        line = AkcuLine("akcu", ep, models, seen_after_s=0.0)
        received = ep.on_data
        assert received is not None

        def on_data(data: bytes) -> None:
            heard.extend(x for x in data.split(b"\r\n") if x)
            received(data)

        ep.on_data = on_data
        agent = Agent(parse_config(unit_config(tmp_path, mosquitto.port, ep.path)))
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        await until("gateway online", lambda: agent.stats.connected)
        first = notice(1, "heat-0801-a")
        for _ in range(50):  # until the gateway has subscribed
            cloud.send(first)
            if cloud.final(first["id"]):
                break
            await asyncio.sleep(0.1)
        await until("the first notice done", lambda: cloud.final(first["id"]))
        # the resident of unit 1 presses "seen": the simulator's next ticks send it
        line.tick(time.time())
        line.tick(time.time() + 1)
        await until("the seen event", lambda: _events(cloud, "notice_seen"))
        line.seen_after_s = None  # nobody else presses
        burst = [notice(u, f"heat-0801-{u}") for u in range(1, UNITS + 1)]
        for c in burst:
            cloud.send(c)
        await until("20 notices done", lambda: _done(cloud, burst) >= 20, 60)
        ep.write(format_message(7, 4242, "BTN", {"temperature": 33.1, "humidity": 71.0}))
        await until("the button at the cloud", lambda: _events(cloud, "button"), 30)
        await until("every notice done", lambda: _done(cloud, burst) == UNITS, 90)
        stop.set()
        await task
        await ep.stop()
        return line, first, burst

    line, first, burst = asyncio.run(go())
    cloud.close()
    final = cloud.final(first["id"])
    assert final is not None and final["reason"].startswith("notice heat-0801-a acknowledged")
    seen = _events(cloud, "notice_seen")
    assert [(r["device_id"], r["values"]["notice_id"]) for r in seen] == [
        ("cu-0001", "heat-0801-a")
    ]
    assert line.pending == {}  # the SEEN was acknowledged ($AKAK)
    # every unit showed its notice exactly once (unit 1: the first one too)
    shown = sorted((n.unit_id, n.notice_id) for n in line.notices)
    assert shown == sorted([(1, "heat-0801-a")] + [(u, f"heat-0801-{u}") for u in range(1, 501)])
    assert all(n.text == TEXT and n.kind == "HEAT" and n.level == 3 for n in line.notices)
    # by ordering: the button reached the cloud before the last notice was done ...
    kinds = [
        "button" if k == "reading" and r["values"].get("event") == "button" else r.get("state")
        for k, r in cloud.events
        if k == "reading" or r["id"] in {c["id"] for c in burst}
    ]
    assert kinds.index("button") < len(kinds) - 1 - kinds[::-1].index("done")
    done_before = kinds[: kinds.index("button")].count("done")
    assert done_before < UNITS, done_before
    # ... and its $AKAK went out on the line ahead of the notices still queued
    ack = next(i for i, x in enumerate(heard) if x.startswith(b"$AKAK,7,4242*"))
    assert any(x.startswith(b"$AKNT") for x in heard[ack + 1 :])


def _events(cloud: Cloud, event: str) -> list[dict[str, Any]]:
    return [r for r in cloud.readings() if r["values"].get("event") == event]


def _done(cloud: Cloud, cmds: list[dict[str, Any]]) -> int:
    ids = {c["id"] for c in cmds}
    with cloud.lock:
        return sum(1 for r in cloud.results if r["id"] in ids and r["state"] == "done")
