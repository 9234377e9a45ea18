"""Ingest benchmark: 100 simulated gateways -> real Mosquitto -> 1 then 2 ingest
processes -> a real influxd (all started here, in a temp dir).

    python -m bench.ingest [--workers 1,2] [--target 150000] [--capacity-readings 600000]

For each worker count it prints:

- capacity: a backlog of readings published as fast as the publishers can, then the
  time until every one is queryable -> sustained points/s, and the CPU seconds the
  ingest processes (and influxd, mosquitto) spent per 100k points;
- the sustained rate S = min(target, measured capacity);
- latency at S/2: from a reading's timestamp to it being queryable (InfluxDB polled
  every 100 ms per 100 ms bucket: figures are +-0.1 s);
- burst: 10 s at S then 10 s at 2 S; loss = readings the broker acknowledged to the
  publishers minus readings stored (must be 0), and how long the backlog took to drain.

Broker queue limits are read from deploy/mosquitto/mosquitto.conf, so the benchmark
checks the shipped configuration. Figures are noisy on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.servers import Influx, _stop, free_port, wait_port  # noqa: E402

GATEWAYS = 100
PER_BATCH = 50
PUBLISHERS = 2


# --- servers -------------------------------------------------------------------------


def deploy_limits() -> str:
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    keep = ("max_queued_messages", "max_queued_bytes", "max_inflight_messages", "max_packet_size")
    return "\n".join(line for line in conf.splitlines() if line.startswith(keep)) + "\n"


def start_mosquitto(d: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = d / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        + deploy_limits()
        + "log_dest stdout\nlog_type error\nlog_type warning\n"
    )
    with (d / "mosquitto.log").open("wb") as log:
        proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log, stderr=log)
    wait_port(port, proc=proc)
    return proc, port


def query(influx: Influx, q: str, db: str = "akita") -> dict[str, Any]:
    return influx.query(q, db)


def stored(influx: Influx, since_ms: int) -> int:
    r = query(influx, f'SELECT count("flow") FROM "water_block" WHERE time >= {since_ms}ms')
    series = r["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


# --- publishers ------------------------------------------------------------------------


def _template(gateway: str) -> bytes:
    readings = ",".join(
        f'{{"device_id":"wb-{gateway}-{i:02d}","kind":"water_block","ts":"@TS@","values":'
        f'{{"flow":{100 + i}.5,"pressure":0.31,"totaliser":123456.75}}}}'
        for i in range(PER_BATCH)
    )
    envelope = f'{{"v":1,"gateway_id":"{gateway}","seq":@SEQ@,"sent_at":"@TS@","readings":['
    return (envelope + readings + "]}").encode()


def _iso(ms: int) -> bytes:
    t = time.gmtime(ms // 1000)
    return b"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
        t.tm_year,
        t.tm_mon,
        t.tm_mday,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
        ms % 1000,
    )


def publisher(index: int, port: int, commands: Any, results: Any) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    gateways = [f"bg{g:03d}" for g in range(index, GATEWAYS, PUBLISHERS)]
    templates = {g: _template(g) for g in gateways}
    seqs = dict.fromkeys(gateways, 0)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{index}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    last_ms = 0
    while True:
        cmd = commands.get()
        if cmd is None:
            break
        rate, duration, count = cmd  # readings/s for this publisher, s; or a count
        infos = []
        sent = 0
        start = time.monotonic()
        i = 0
        while True:
            if count is not None:
                if sent >= count:
                    break
            else:
                elapsed = time.monotonic() - start
                if elapsed >= duration:
                    break
                due = rate * elapsed
                if sent >= due:
                    time.sleep(min(0.002, (sent - due) / rate))
                    continue
            g = gateways[i % len(gateways)]
            i += 1
            now_ms = max(int(time.time() * 1000), last_ms)
            if i % len(gateways) == 0:
                last_ms = now_ms + 1  # one gateway's devices never repeat a timestamp
            seqs[g] += 1
            payload = (
                templates[g].replace(b"@TS@", _iso(now_ms)).replace(b"@SEQ@", str(seqs[g]).encode())
            )
            infos.append(client.publish(f"akita/v1/{g}/telemetry", payload, qos=1))
            sent += PER_BATCH
        for info in infos:
            info.wait_for_publish(120)
        results.put((index, sent))
    client.disconnect()
    client.loop_stop()


@dataclass
class Pubs:
    commands: list[Any]
    results: Any
    procs: list[mp.Process]

    def run(self, rate: float | None, duration: float = 0.0, count: int | None = None) -> int:
        for q in self.commands:
            share = None if count is None else count // PUBLISHERS
            q.put((None if rate is None else rate / PUBLISHERS, duration, share))
        return sum(self.results.get(timeout=600)[1] for _ in self.commands)

    def close(self) -> None:
        for q in self.commands:
            q.put(None)
        for p in self.procs:
            p.join(30)


def start_publishers(port: int) -> Pubs:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    commands = [ctx.Queue() for _ in range(PUBLISHERS)]
    procs = [
        ctx.Process(target=publisher, args=(i, port, commands[i], results), daemon=True)
        for i in range(PUBLISHERS)
    ]
    for p in procs:
        p.start()
    return Pubs(commands, results, procs)


# --- ingest workers --------------------------------------------------------------------


def start_workers(n: int, port: int, influx: Influx, tag: str) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "AKITA_INGEST_BATCH_SIZE": "10000",
        "AKITA_INGEST_BATCH_TIME_S": "0.1",
        "AKITA_INGEST_SELF_METRICS_INTERVAL_S": "5",
    }
    procs = []
    for i in range(n):
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cloud.ingest",
                    "--store",
                    f"influx+http://127.0.0.1:{influx.port}/akita",
                    "--broker-port",
                    str(port),
                    "--client-id",
                    f"bench-ingest-{tag}-{i}",
                    "--group",
                    f"bench{tag}",
                    "--log-level",
                    "WARNING",
                ],
                cwd=ROOT,
                env=env,
            )
        )
    return procs


def cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def wait_stored(influx: Influx, since_ms: int, expected: int, timeout: float = 300) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stored(influx, since_ms) >= expected:
            return time.monotonic()
        time.sleep(0.1)
    raise SystemExit(f"only {stored(influx, since_ms)} of {expected} stored after {timeout}s")


def latency_run(influx: Influx, pubs: Pubs, rate: float, duration: float) -> dict[str, float]:
    """Offer ``rate`` for ``duration`` s; poll per-100 ms bucket counts to time arrivals."""
    start_ms = int(time.time() * 1000)
    result: list[int] = []
    import threading

    sender = threading.Thread(target=lambda: result.append(pubs.run(rate, duration)))
    sender.start()
    seen: dict[int, int] = {}
    latencies: list[tuple[float, int]] = []  # (latency s, readings)
    while True:
        now = time.time()
        r = query(
            influx,
            f'SELECT count("flow") FROM "water_block" WHERE time >= {start_ms}ms '
            f"AND time < {int(now * 1000) + 1000}ms GROUP BY time(100ms) fill(none)",
        )
        for series in r["results"][0].get("series", []):
            for ts, n in series["values"]:
                new = n - seen.get(ts, 0)
                if new > 0:
                    latencies.append((now - (ts + 50) / 1000, new))
                    seen[ts] = n
        if result and sum(seen.values()) >= result[0]:
            break
        if result and time.time() - start_ms / 1000 > duration + 120:
            break
        time.sleep(0.1)
    sender.join()
    latencies.sort()
    total = sum(n for _, n in latencies)

    def pct(p: float) -> float:
        acc = 0
        for lat, n in latencies:
            acc += n
            if acc >= p * total:
                return max(lat, 0.0)
        return float("nan")

    return {"offered": result[0], "stored": total, "p50": pct(0.5), "p99": pct(0.99)}


def bench(workers: int, args: argparse.Namespace, base: Path) -> dict[str, Any]:
    d = base / f"w{workers}"
    (d / "influx").mkdir(parents=True)
    (d / "mqtt").mkdir()
    influx = Influx(
        binary="influxd", directory=d / "influx", port=free_port(), rpc_port=free_port()
    )
    influx.start()
    mosq, port = start_mosquitto(d / "mqtt")
    from cloud.store import init_db

    init_db(f"influx+http://127.0.0.1:{influx.port}/akita")
    procs = start_workers(workers, port, influx, f"w{workers}")
    pubs = start_publishers(port)
    out: dict[str, Any] = {"workers": workers}
    try:
        time.sleep(3)  # workers subscribed
        # warm-up (imports, first series creation)
        t = int(time.time() * 1000)
        warm = pubs.run(None, count=GATEWAYS * PER_BATCH * 4)
        wait_stored(influx, t, warm)

        # 1. capacity: a backlog drained as fast as possible
        ingest_pids = [p.pid for p in procs]
        c0 = cpu(ingest_pids)
        i0 = cpu([influx.proc.pid])  # type: ignore[union-attr]
        m0 = cpu([mosq.pid])
        t_ms = int(time.time() * 1000)
        started = time.monotonic()
        published = pubs.run(None, count=args.capacity_readings)
        t_pub = time.monotonic() - started
        done = wait_stored(influx, t_ms, published)
        elapsed = done - started
        per100k = 100_000 / published
        out["capacity"] = {
            "readings": published,
            "publish_s": round(t_pub, 2),
            "points_per_s": round(published / elapsed),
            "ingest_cpu_s_per_100k": round((cpu(ingest_pids) - c0) * per100k, 3),
            "influxd_cpu_s_per_100k": round(
                (cpu([influx.proc.pid]) - i0) * per100k,
                3,  # type: ignore[union-attr]
            ),
            "mosquitto_cpu_s_per_100k": round((cpu([mosq.pid]) - m0) * per100k, 3),
        }
        print(json.dumps(out["capacity"]), flush=True)

        # the sustained rate: the target, or what this machine drains if that is less
        rate = min(args.target, out["capacity"]["points_per_s"])
        out["sustained_rate"] = rate

        # 2. latency at half the sustained rate
        lat = latency_run(influx, pubs, rate / 2, args.latency_s)
        out["latency_half_rate"] = {"offered_per_s": round(rate / 2)} | {
            k: round(v, 3) for k, v in lat.items()
        }
        print(json.dumps(out["latency_half_rate"]), flush=True)

        # 3. the sustained rate, then a burst at twice it: loss must be zero
        t_ms = int(time.time() * 1000)
        started = time.monotonic()
        sent = pubs.run(rate, args.burst_s)
        sent += pubs.run(rate * 2, args.burst_s)
        offered_s = time.monotonic() - started
        done = wait_stored(influx, t_ms, sent, timeout=600)
        time.sleep(1.0)
        got = stored(influx, t_ms)
        out["burst"] = {
            "offered_readings": sent,
            "offered_s": round(offered_s, 1),
            "stored": got,
            "loss": sent - got,
            "drained_after_s": round(done - started - offered_s, 1),
            "effective_points_per_s": round(sent / (done - started)),
        }
        print(json.dumps(out["burst"]), flush=True)
    finally:
        pubs.close()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        _stop(mosq)
        influx.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workers", default="1,2", help="worker counts to run, e.g. 1,2")
    parser.add_argument("--target", type=float, default=150_000, help="target points/s")
    parser.add_argument("--capacity-readings", type=int, default=600_000)
    parser.add_argument("--latency-s", type=float, default=15.0)
    parser.add_argument("--burst-s", type=float, default=10.0)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="akita-bench-") as tmp:
        for n in (int(x) for x in re.split(r"[, ]+", args.workers) if x):
            print(f"--- {n} ingest worker(s) ---", flush=True)
            results.append(bench(n, args, Path(tmp)))
    print("\nsummary (noisy: shared 2-core machine)")
    for r in results:
        c, lat, b = r["capacity"], r["latency_half_rate"], r["burst"]
        print(
            f"workers={r['workers']} points/s={c['points_per_s']} "
            f"ingest_cpu_s/100k={c['ingest_cpu_s_per_100k']} "
            f"influxd_cpu_s/100k={c['influxd_cpu_s_per_100k']} "
            f"p50={lat['p50']}s p99={lat['p99']}s (at {lat['offered_per_s']}/s offered) "
            f"burst_loss={b['loss']} drained_after={b['drained_after_s']}s"
        )


if __name__ == "__main__":
    main()
