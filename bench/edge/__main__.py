"""Benchmark the gateway: 50 Modbus TCP devices (4 values each) polled at 1 s.

Prints the agent process's RSS and CPU % of one core over the measured window,
against a real Mosquitto, with the durable spool on; then the spool's own
throughput with a burst (readings/s written, then drained), measured separately.

    python -m bench.edge [--devices 50] [--duration 60] [--burst 50000]
    python -m bench.edge --rtu [--duration 10]

``--rtu`` instead prints polls/s on a simulated RTU line at 9600 and 19200 baud
against the limit the frame sizes set (``bench/edge/rtu.py``; target >= 90 %).

Figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tty
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
import tomli_w
from paho.mqtt.enums import CallbackAPIVersion

from edge.drivers.callunit.protocol import sentence
from edge.spool import Item, Spool
from schemas import topics
from tests.servers import free_port, running_mosquitto

ROOT = Path(__file__).resolve().parents[2]


def config(path: Path, mqtt_port: int, modbus_port: int, n: int, pty_path: str) -> None:
    devices = [
        {
            "id": f"mp-{u:03d}",
            "kind": "manhole_pump",
            "driver": "modbus_tcp",
            "host": "127.0.0.1",
            "port": modbus_port,
            "unit_id": u,
            "poll_interval_s": 1.0,
            "timeout_s": 1.0,
            "report": "on_change_or_period",
            "report_period_s": 60.0,
            "registers": [
                {
                    "field": "level",
                    "function": "input",
                    "address": 0,
                    "type": "int16",
                    "scale": 0.001,
                },
                {
                    "field": "pump1_current",
                    "function": "input",
                    "address": 1,
                    "type": "int16",
                    "scale": 0.1,
                },
                {
                    "field": "pump2_current",
                    "function": "input",
                    "address": 2,
                    "type": "int16",
                    "scale": 0.1,
                },
                {"field": "fault_code", "function": "input", "address": 3, "type": "uint16"},
            ],
        }
        for u in range(1, n + 1)
    ]
    devices.append(
        {
            "id": "cu-bench",
            "kind": "call_unit",
            "driver": "call_unit",
            "serial_port": pty_path,
            "unit_id": 1,
            "poll_interval_s": 300.0,
        }
    )
    cfg = {
        "gateway": {"id": "gw-bench", "spool_path": str(path.parent / "spool.db")},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
        "devices": devices,
    }
    path.write_text(tomli_w.dumps(cfg))


class ReadingCounter:
    """Counts the readings that reach the broker (QoS 1 subscriber)."""

    def __init__(self, port: int) -> None:
        self.readings = 0
        self.buttons: list[float] = []
        c = mqtt.Client(CallbackAPIVersion.VERSION2)
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(topics.telemetry("gw-bench"), qos=1)
        c.on_message = self._on
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c

    def _on(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        readings = json.loads(msg.payload)["readings"]
        self.readings += len(readings)
        now = time.monotonic()
        self.buttons += [now for r in readings if r["values"].get("event") == "button"]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def run_agent(n: int, duration: float, warmup: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "mosquitto").mkdir()
        with running_mosquitto(d / "mosquitto") as mosq:
            port = free_port()
            farm = subprocess.Popen(
                [sys.executable, "-m", "bench.edge.devices", str(port), str(n)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
            )
            try:
                assert farm.stdout is not None and farm.stdout.readline().strip() == b"ready"
                master, slave = os.openpty()
                tty.setraw(slave)
                config(d / "edge.toml", mosq.port, port, n, os.ttyname(slave))
                log = (d / "edge.log").open("wb")
                agent = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "edge",
                        "run",
                        "--config",
                        str(d / "edge.toml"),
                        "--log-level",
                        "warning",
                    ],
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                proc = psutil.Process(agent.pid)
                counter = ReadingCounter(mosq.port)
                time.sleep(warmup)
                c0, t0, r0 = proc.cpu_times(), time.monotonic(), counter.readings
                rss_peak = 0
                pressed: list[float] = []
                while time.monotonic() - t0 < duration:
                    time.sleep(1.0 + 0.37 * (len(pressed) % 3))  # off the poll tick
                    rss_peak = max(rss_peak, proc.memory_info().rss)
                    if len(pressed) < 20:
                        line = sentence(f"AKCU,1,{len(pressed)},BTN,25.0,50.0")
                        pressed.append(time.monotonic())
                        os.write(master, line)
                c1, t1, r1 = proc.cpu_times(), time.monotonic(), counter.readings
                time.sleep(1.0)
                counter.close()
                os.close(master)
                os.close(slave)
                lat = sorted((b - p) * 1000 for p, b in zip(pressed, counter.buttons, strict=False))
                rss = proc.memory_info().rss
                agent.terminate()
                agent.wait(30)
                stats = (d / "edge.log").read_text()
            finally:
                farm.terminate()
                farm.wait(10)
    cpu = (c1.user + c1.system - c0.user - c0.system) / (t1 - t0) * 100
    return {
        "cpu_pct_one_core": cpu,
        "rss_mb": rss / 2**20,
        "rss_peak_mb": rss_peak / 2**20,
        "window_s": t1 - t0,
        "log_lines": float(len(stats.splitlines())),
        "delivered_per_s": (r1 - r0) / (t1 - t0),
        "presses": float(len(pressed)),
        "buttons_seen": float(len(counter.buttons)),
        "button_p50_ms": lat[len(lat) // 2] if lat else float("nan"),
        "button_max_ms": lat[-1] if lat else float("nan"),
    }


def bench_spool(burst: int, chunk: int = 500, batch: int = 500) -> dict[str, float]:
    bodies = [
        json.dumps(
            {
                "device_id": f"mp-{i % 50:03d}",
                "kind": "manhole_pump",
                "ts": f"2026-06-01T00:00:{i % 60:02d}.{i % 1000:03d}Z",
                "values": {
                    "level": 1.234,
                    "pump1_current": 12.3,
                    "pump2_current": 9.1,
                    "fault_code": 0,
                },
            }
        ).encode()
        for i in range(burst)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        spool = Spool(Path(tmp) / "spool.db")
        t0 = time.perf_counter()
        for i in range(0, burst, chunk):
            spool.add([Item(b) for b in bodies[i : i + chunk]])
        t1 = time.perf_counter()
        n = 0
        while (b := spool.take_batch("gw-bench", "2026-06-01T00:00:00.000Z", batch)) is not None:
            n += spool.ack(b.seq)
        t2 = time.perf_counter()
        assert n == burst and spool.depth == 0
        # both at once, as while draining a backlog with new readings arriving
        t3 = time.perf_counter()
        for i in range(0, burst, chunk):
            spool.add([Item(b) for b in bodies[i : i + chunk]])
            b = spool.take_batch("gw-bench", "2026-06-01T00:00:00.000Z", batch)
            assert b is not None
            spool.ack(b.seq)
        t4 = time.perf_counter()
        spool.close()
    return {
        "write_per_s": burst / (t1 - t0),
        "drain_per_s": burst / (t2 - t1),
        "write_and_drain_per_s": burst / (t4 - t3),
    }


def rtu_main(duration: float) -> None:
    from bench.edge.rtu import RESPONSE_CHARS, bench_rtu

    print(
        f"edge bench --rtu: one TUF-2000M on a simulated RS-485 line that holds each frame "
        f"for its wire time (11 bits/character); one request of 12 registers per poll "
        f"(8 + {RESPONSE_CHARS} characters + 2 x 3.5 gap); {duration:g} s per rate; "
        f"cores={psutil.cpu_count()} load={psutil.getloadavg()}"
    )
    for baud in (9600, 19200):
        r = bench_rtu(baud, duration)
        print(
            f"{baud} baud: {r.per_s:.2f} polls/s, line limit {r.limit_per_s:.2f} polls/s, "
            f"{r.ratio:.1%} of the limit (target >= 90 %)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--burst", type=int, default=50_000)
    ap.add_argument("--rtu", action="store_true", help="the RTU line benchmark only")
    args = ap.parse_args()
    if args.rtu:
        rtu_main(args.duration if args.duration != 60.0 else 10.0)
        return
    print(
        f"edge bench: {args.devices} Modbus TCP devices x 4 values at 1 s, real Mosquitto, "
        f"durable spool; cores={psutil.cpu_count()} load={psutil.getloadavg()}"
    )
    s = bench_spool(args.burst)
    print(
        f"spool burst {args.burst}: written {s['write_per_s']:,.0f} readings/s, "
        f"drained {s['drain_per_s']:,.0f} readings/s, "
        f"write+drain interleaved {s['write_and_drain_per_s']:,.0f} readings/s "
        "(target >= 5,000)"
    )
    a = run_agent(args.devices, args.duration, args.warmup)
    print(
        f"agent over {a['window_s']:.0f} s: CPU {a['cpu_pct_one_core']:.2f} % of one core "
        f"(target <= 4 %), RSS {a['rss_mb']:.1f} MB, peak {a['rss_peak_mb']:.1f} MB "
        f"(target <= 60 MB); {a['delivered_per_s']:.1f} readings/s reached a subscriber"
    )
    print(
        f"button press -> broker -> subscriber: {a['buttons_seen']:.0f}/{a['presses']:.0f} "
        f"arrived, latency p50 {a['button_p50_ms']:.0f} ms, max {a['button_max_ms']:.0f} ms "
        "(target <= 250 ms)"
    )


if __name__ == "__main__":
    main()
