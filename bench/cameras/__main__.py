"""Benchmark the gateway's cameras: 20 simulated cameras at one frame each 10 s.

Three runs of the real gateway process (``python -m edge run``) against a real Mosquitto
(``tests.servers.running_mosquitto``), with the same telemetry in each (``--devices``
Modbus TCP pump stations polled at 1 s from ``bench.edge.devices``, as ``bench/edge``):

1. telemetry only: the gateway's CPU (% of one core, ``psutil`` user+system over the
   window) and RSS;
2. the same plus ``--cameras`` cameras (``firmware_sim.camera`` HTTP servers in another
   process, so drawing the scene is not counted) at ``interval_s = 10``: the same figures
   and the difference;
3. the outage backlog: the cameras at a faster cadence (``--fast-interval``) while the
   broker is stopped, until the image spool holds ``--backlog`` images (20 cameras x
   60 frames = 1200, what a 10-minute outage at 10 s leaves); the camera process is then
   stopped (at the real 10 s cadence new frames would be 2/s, next to nothing) and the
   broker started again. A QoS 1 subscriber counts the backlog's images: images/s and
   MB/s from the first to the last backlog image, and the time from the broker's restart.

    python -m bench.cameras [--cameras 20] [--devices 20] [--window 60] [--warmup 15]

Not a test: it prints figures and the load average; every loop is bounded. Figures
depend on the machine and on what else runs on it (see the load average).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import tty
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
import tomli_w
from paho.mqtt.enums import CallbackAPIVersion

from bench.edge.__main__ import config as telemetry_config
from schemas import topics
from tests.servers import Mosquitto, free_port, running_mosquitto

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = "gw-bench"


@dataclass
class Usage:
    cpu_pct_one_core: float
    rss_mb: float
    rss_peak_mb: float
    window_s: float


class ImageCounter:
    """A persistent QoS 1 session on the gateway's image topic: (arrival, seq, size)."""

    def __init__(self, port: int) -> None:
        self.got: list[tuple[float, int, int]] = []
        self._lock = threading.Lock()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-images", clean_session=False)
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(topics.image(GATEWAY), qos=1)
        c.on_message = self._on
        c.reconnect_delay_set(min_delay=1, max_delay=1)
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c

    def _on(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        head, _, _jpeg = msg.payload.partition(b"\n")
        seq = int(json.loads(head)["seq"])
        with self._lock:
            self.got.append((time.monotonic(), seq, len(msg.payload)))

    def snapshot(self) -> list[tuple[float, int, int]]:
        with self._lock:
            return list(self.got)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Setup:
    """The broker, the Modbus farm, the pty of the call unit and a temp directory."""

    def __init__(self, d: Path, mosq: Mosquitto, devices: int) -> None:
        self.d, self.mosq, self.devices = d, mosq, devices
        self.modbus_port = free_port()
        self.farm = subprocess.Popen(
            [sys.executable, "-m", "bench.edge.devices", str(self.modbus_port), str(devices)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        assert self.farm.stdout is not None and self.farm.stdout.readline().strip() == b"ready"
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)
        self.farm.terminate()
        self.farm.wait(10)


def start_cameras(n: int) -> tuple[subprocess.Popen[str], list[int]]:
    farm = subprocess.Popen(
        [sys.executable, "-m", "bench.cameras.farm", str(n)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert farm.stdout is not None
    return farm, [int(p) for p in json.loads(farm.stdout.readline())]


def stop_cameras(farm: subprocess.Popen[str]) -> None:
    assert farm.stdin is not None
    farm.stdin.close()
    try:
        farm.wait(10)
    except subprocess.TimeoutExpired:
        farm.kill()
        farm.wait()


def write_config(s: Setup, name: str, ports: list[int], interval_s: float) -> Path:
    path = s.d / name / "edge.toml"
    path.parent.mkdir()
    telemetry_config(path, s.mosq.port, s.modbus_port, s.devices, os.ttyname(s.slave))
    cfg: dict[str, Any] = tomllib.loads(path.read_text())
    cfg["mqtt"].update(reconnect_min_s=1.0, reconnect_max_s=2.0)
    if ports:
        cfg["cameras"] = {
            "spool_path": str(path.parent / "images.db"),
            "cameras": [
                {
                    "id": f"cam-{i:02d}",
                    "site": f"アンダーパス{i:02d}",
                    "url": f"http://127.0.0.1:{port}/snapshot.jpg",
                    "interval_s": interval_s,
                    "alert_interval_s": interval_s,
                    "masks": [[[900, 120], [1100, 120], [1100, 300], [900, 300]]],
                }
                for i, port in enumerate(ports)
            ],
        }
    path.write_text(tomli_w.dumps(cfg))
    return path


def start_gateway(path: Path) -> subprocess.Popen[bytes]:
    log = (path.parent / "edge.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(path), "--log-level", "warning"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop_gateway(agent: subprocess.Popen[bytes]) -> None:
    agent.terminate()
    try:
        agent.wait(30)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait()


def measure(agent: subprocess.Popen[bytes], warmup: float, window: float) -> Usage:
    proc = psutil.Process(agent.pid)
    time.sleep(warmup)
    assert agent.poll() is None, "the gateway exited during the warm-up (see its edge.log)"
    c0, t0 = proc.cpu_times(), time.monotonic()
    peak = 0
    for _ in range(int(window) + 1):  # bounded: one RSS sample a second
        if time.monotonic() - t0 >= window:
            break
        time.sleep(min(1.0, window - (time.monotonic() - t0)))
        peak = max(peak, proc.memory_info().rss)
    c1, t1 = proc.cpu_times(), time.monotonic()
    rss = proc.memory_info().rss
    cpu = (c1.user + c1.system - c0.user - c0.system) / (t1 - t0) * 100
    return Usage(cpu, rss / 2**20, max(peak, rss) / 2**20, t1 - t0)


def run_usage(s: Setup, name: str, cameras: int, warmup: float, window: float) -> Usage:
    farm, ports = start_cameras(cameras) if cameras else (None, [])
    agent = start_gateway(write_config(s, name, ports, 10.0))
    try:
        return measure(agent, warmup, window)
    finally:
        stop_gateway(agent)
        if farm is not None:
            stop_cameras(farm)


def spooled(db: Path) -> tuple[int, int]:
    """(images waiting, highest seq) in the gateway's image spool, read-only."""
    if not db.exists():
        return 0, 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
        n, top = c.execute("SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM images").fetchone()
    return int(n), int(top)


def run_outage(s: Setup, cameras: int, interval: float, backlog: int) -> dict[str, float]:
    farm: subprocess.Popen[str] | None
    farm, ports = start_cameras(cameras)
    path = write_config(s, "outage", ports, interval)
    counter = ImageCounter(s.mosq.port)
    agent = start_gateway(path)
    db = path.parent / "images.db"
    try:
        time.sleep(5.0)  # connected, the first images through
        s.mosq.stop()
        t_down = time.monotonic()
        at_down = spooled(db)[0]  # already waiting: 40 frames/s outrun the uploader
        for _ in range(1200):  # bounded: at most 600 s of outage
            if spooled(db)[0] >= backlog:
                break
            time.sleep(0.5)
        built_s = time.monotonic() - t_down
        assert farm is not None
        stop_cameras(farm)
        waiting, top = spooled(db)
        farm = None
        s.mosq.start()
        t_up = time.monotonic()
        for _ in range(1200):  # bounded: at most 600 s of drain
            got = {seq for _, seq, _ in counter.snapshot() if seq <= top}
            if len(got) >= top:
                break
            time.sleep(0.5)
        assert agent.poll() is None, "the gateway exited (see its edge.log)"
    finally:
        stop_gateway(agent)
        counter.close()
        if farm is not None:
            stop_cameras(farm)
    rows = counter.snapshot()
    first_seq = top - waiting + 1
    drained = [(t, size) for t, seq, size in rows if first_seq <= seq <= top and t >= t_up]
    seqs = [seq for _, seq, _ in rows if seq <= top]
    if len(drained) < 2:
        raise SystemExit(f"backlog not drained: {len(drained)} of {waiting} arrived")
    t_first, t_last = min(t for t, _ in drained), max(t for t, _ in drained)
    span = t_last - t_first
    return {
        "backlog": float(waiting),
        "at_down": float(at_down),
        "built_s": built_s,
        "arrived": float(len(drained)),
        "duplicates": float(len(seqs) - len(set(seqs))),
        "in_order": float(seqs == sorted(seqs)),
        "reconnect_s": t_first - t_up,
        "drain_s": span,
        "images_per_s": (len(drained) - 1) / span,
        "mb_per_s": sum(size for _, size in drained) / span / 1e6,
        "mean_kb": sum(size for _, size in drained) / len(drained) / 1e3,
        "total_s": t_last - t_up,
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.cameras")
    ap.add_argument("--cameras", type=int, default=20)
    ap.add_argument("--devices", type=int, default=20, help="Modbus telemetry devices at 1 s")
    ap.add_argument("--window", type=float, default=60.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=15.0)
    ap.add_argument("--backlog", type=int, default=1200, help="images left by the outage")
    ap.add_argument("--fast-interval", type=float, default=0.5, help="cadence building it")
    args = ap.parse_args()
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "mosquitto").mkdir()
        with running_mosquitto(d / "mosquitto") as mosq:
            s = Setup(d, mosq, args.devices)
            try:
                base = run_usage(s, "telemetry", 0, args.warmup, args.window)
                cams = run_usage(s, "cameras", args.cameras, args.warmup, args.window)
                out = run_outage(s, args.cameras, args.fast_interval, args.backlog)
            finally:
                s.close()
    load1 = os.getloadavg()
    extra = cams.cpu_pct_one_core - base.cpu_pct_one_core
    print(
        f"gateway with {args.devices} Modbus devices at 1 s; {psutil.cpu_count()} cores; "
        f"load average before {' '.join(f'{x:.2f}' for x in load0)}, "
        f"after {' '.join(f'{x:.2f}' for x in load1)}"
    )
    print(
        f"telemetry only:        CPU {base.cpu_pct_one_core:5.1f} % of one core, RSS "
        f"{base.rss_mb:5.1f} MB (peak {base.rss_peak_mb:.1f}) over {base.window_s:.0f} s"
    )
    print(
        f"+ {args.cameras} cameras at 10 s: CPU {cams.cpu_pct_one_core:5.1f} % of one core, RSS "
        f"{cams.rss_mb:5.1f} MB (peak {cams.rss_peak_mb:.1f}) over {cams.window_s:.0f} s"
    )
    print(
        f"cameras' share:        CPU {extra:+5.1f} % of one core (target <= 5), RSS "
        f"{cams.rss_peak_mb:.1f} MB peak (target <= 100)"
    )
    print(
        f"outage backlog: {out['backlog']:.0f} images built in {out['built_s']:.0f} s at "
        f"{args.fast_interval} s per camera (instead of 600 s at 10 s; {out['at_down']:.0f} "
        f"already waiting when the broker stopped), cameras stopped, broker restarted"
    )
    print(
        f"  drained {out['arrived']:.0f} in {out['drain_s']:.1f} s "
        f"after {out['reconnect_s']:.1f} s to reconnect: "
        f"{out['images_per_s']:.1f} images/s, {out['mb_per_s']:.2f} MB/s "
        f"(mean {out['mean_kb']:.0f} kB); duplicates {out['duplicates']:.0f}, "
        f"in order {'yes' if out['in_order'] else 'no'}"
    )


if __name__ == "__main__":
    main()
