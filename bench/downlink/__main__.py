"""One notice to every call unit of 20 gateways while residents press their buttons.

    python -m bench.downlink [--gateways 20] [--units 100] [--baud 9600] [--buttons-per-s 4]

Every gateway is a real ``akita edge run`` process (as on site: one per Raspberry Pi;
``--in-process`` runs them all as agents in this one process and event loop, which makes
the gateways wait for each other) with its call units on one simulated AKCU line (a pty;
the firmware_sim line simulator plays the units and acknowledges each notice on
receipt). The host paces notice frames at ``--baud`` (8N1, 10 bits a byte), the line
speed of the radio concentrators (9600). A client plays the cloud on a real
Mosquitto: it publishes one ``notice`` command per unit, all at once, and meanwhile a
button press (BTN) is written on a random line every ``1/--buttons-per-s`` seconds.

Prints the time until 99 % of the units have the notice (at the unit, and as ``done`` at
the cloud; target <= 60 s) and the BTN latency from the unit's line to the cloud while the
fan-out runs (target p99 <= 250 ms). Here all gateways share the machine's cores; on
site each has its own. Figures depend on the machine and its load.

Alert opened -> lamp read-back on, over 50 storms: ``python -m bench.downlink.storms``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import tomli_w
from paho.mqtt.enums import CallbackAPIVersion

from edge.agent import Agent
from edge.config import parse_config
from firmware_sim.models.callunit import CallUnitModel
from firmware_sim.servers.akcu import AkcuLine, format_message
from firmware_sim.servers.endpoints import PtyEndpoint
from schemas import topics
from tests.servers import running_mosquitto

ROOT = Path(__file__).resolve().parents[2]
TEXT = "熱中症警戒アラートが発表されました。水分をとり、エアコンを使ってください"


class CloudSide:
    """Publishes the notices; timestamps every result and button reading on arrival.

    Two connections, as in the cloud (command service, ingest): a button reading must not
    queue behind thousands of command results in one client's stream.
    """

    def __init__(self, port: int) -> None:
        self.done: dict[str, float] = {}
        self.failed: dict[str, str] = {}
        self.buttons: dict[tuple[str, str], float] = {}  # (device, tag) -> arrival
        self.online: set[str] = set()
        self.lock = threading.Lock()
        self.client = self._connect(port, [topics.Channel.CMD_RESULT])
        self._ingest = self._connect(port, [topics.Channel.TELEMETRY, topics.Channel.STATUS])

    def _connect(self, port: int, channels: list[topics.Channel]) -> mqtt.Client:
        ready = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(
            [(topics.subscription(ch), 1) for ch in channels]
        )
        c.on_subscribe = lambda *a: ready.set()
        c.on_message = self._on
        c.max_inflight_messages_set(1000)
        c.connect("127.0.0.1", port)
        c.loop_start()
        assert ready.wait(10)
        return c

    def close(self) -> None:
        for c in (self.client, self._ingest):
            c.loop_stop()

    def _on(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        body = json.loads(msg.payload)
        with self.lock:
            if msg.topic.endswith("/status"):
                if body.get("state") == "online":
                    self.online.add(body["gateway_id"])
            elif msg.topic.endswith("/cmd/result"):
                if body["state"] == "done":
                    self.done.setdefault(body["id"], now)
                elif body["state"] != "accepted":
                    self.failed[body["id"]] = f"{body['state']}: {body.get('reason')}"
            else:
                for r in body["readings"]:
                    if r["values"].get("event") == "button":
                        self.buttons.setdefault((r["device_id"], r["values"]["humidity"]), now)

    def send(self, gateway: str, cmd: dict[str, Any]) -> None:
        self.client.publish(topics.command(gateway), json.dumps(cmd).encode(), qos=1)


def gateway_config(tmp: Path, gw: str, port: int, path: str, units: range, baud: int) -> Any:
    return {
        "gateway": {"id": gw, "spool_path": str(tmp / f"{gw}.db"), "batch_max_delay_s": 0.5},
        "mqtt": {"host": "127.0.0.1", "port": port},
        "devices": [
            {
                "id": f"cu-{u:05d}",
                "kind": "call_unit",
                "driver": "call_unit",
                "serial_port": path,
                "baudrate": baud,
                "unit_id": u,
                "poll_interval_s": 3600.0,
                "actions": [{"name": "notice"}],
            }
            for u in units
        ],
    }


def notice(gw: str, unit: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": str(uuid.uuid4()),
        "gateway_id": gw,
        "device_id": f"cu-{unit:05d}",
        "action": "notice",
        "params": {"notice_id": "heat-0801", "kind": "heat", "level": 3, "text": TEXT},
        "issued_at": now.isoformat(),
        "expires_at": (now + timedelta(minutes=30)).isoformat(),
        "priority": "high",
        "issuer": "rule:heat-area",
    }


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[max(0, math.ceil(p * len(s)) - 1)]


async def run(args: argparse.Namespace, tmp: Path, port: int) -> None:
    cloud = CloudSide(port)
    lines: list[tuple[str, PtyEndpoint, AkcuLine, range]] = []
    agents, tasks, stop = [], [], asyncio.Event()
    procs: list[subprocess.Popen[bytes]] = []
    received: dict[tuple[int, str], float] = {}
    for g in range(args.gateways):
        gw = f"gw-bench-{g:02d}"
        units = range(g * args.units + 1, (g + 1) * args.units + 1)
        ep = PtyEndpoint(gw)
        await ep.start()
        models = {u: CallUnitModel(f"cu-{u:05d}", u, unit_id=u, t0=1e12) for u in units}
        line = AkcuLine(gw, ep, models)
        line.on_notice = lambda n: received.setdefault((n.unit_id, n.notice_id), time.monotonic())
        lines.append((gw, ep, line, units))
        cfg = gateway_config(tmp, gw, port, ep.path, units, args.baud)
        if args.in_process:
            agent = Agent(parse_config(cfg))
            agents.append(agent)
            tasks.append(asyncio.create_task(agent.run(stop)))
        else:
            path = tmp / f"{gw}.toml"
            path.write_text(tomli_w.dumps(cfg))
            log = (tmp / f"{gw}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "akita", "edge", "run", "--config", str(path),
                     "--log-level", "warning"],
                    cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
    while len(cloud.online) < args.gateways:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # SUBSCRIBE right after CONNACK
    total = args.gateways * args.units
    mode = "agents in one process" if args.in_process else "one edge process each"
    print(
        f"{args.gateways} gateways ({mode}) x {args.units} call units, "
        f"AKCU line {args.baud} baud 8N1"
    )
    start = time.monotonic()
    ids = []
    for gw, _ep, _line, units in lines:
        for u in units:
            cmd = notice(gw, u)
            ids.append(cmd["id"])
            cloud.send(gw, cmd)
    presses: dict[tuple[str, float], float] = {}
    seq = 0
    while len(cloud.done) + len(cloud.failed) < total:
        if time.monotonic() - start > args.timeout:
            break
        gw, ep, line, units = random.choice(lines)
        unit = random.choice(units)
        seq += 1
        tag = 10.0 + (seq % 900) / 10  # humidity carries a tag to match the press
        presses[(f"cu-{unit:05d}", tag)] = time.monotonic()
        ep.write(format_message(unit, 60000 + seq % 5000, "BTN", {"temperature": 30.0,
                                                                   "humidity": tag}))  # fmt: skip
        await asyncio.sleep(1 / args.buttons_per_s)
    await asyncio.sleep(1.0)  # the last presses' round trip
    stop.set()
    await asyncio.gather(*tasks)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(30)
    for _gw, ep, _line, _u in lines:
        await ep.stop()
    done = [cloud.done[i] - start for i in ids if i in cloud.done]
    at_unit = [t - start for t in received.values()]
    lat = [(cloud.buttons[k] - t) * 1000 for k, t in presses.items() if k in cloud.buttons]
    print(f"notices: {total} sent, {len(done)} done, {len(cloud.failed)} failed/expired")
    if len(at_unit) >= 0.99 * total:
        print(f"  99 % at the units after  {pct(at_unit, 0.99):6.1f} s   (target <= 60 s)")
    if len(done) >= 0.99 * total:
        print(f"  99 % done at the cloud   {pct(done, 0.99):6.1f} s   (target <= 60 s)")
        print(f"  all done at the cloud    {max(done):6.1f} s")
    if lat:
        print(
            f"BTN during the fan-out: {len(lat)} of {len(presses)} presses arrived; latency "
            f"p50 {statistics.median(lat):.0f} ms, p99 {pct(lat, 0.99):.0f} ms "
            f"(target <= 250 ms), max {max(lat):.0f} ms"
        )
    cloud.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gateways", type=int, default=20)
    ap.add_argument("--units", type=int, default=100, help="call units per gateway (one line)")
    ap.add_argument("--baud", type=int, default=9600)
    ap.add_argument("--buttons-per-s", type=float, default=4.0)
    ap.add_argument("--timeout", type=float, default=180.0)
    ap.add_argument("--in-process", action="store_true", help="all gateways in this process")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "mosquitto").mkdir()
        with running_mosquitto(tmp / "mosquitto") as broker:
            asyncio.run(run(args, tmp, broker.port))


if __name__ == "__main__":
    main()
