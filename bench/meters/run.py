"""Meter benchmark (issue 22): uplinks/s through one LPWA worker, and the time to build
the pilot report for 10,000 meters x 30 days. Real Mosquitto and influxd, started here
in a temp dir (the shipped broker queue limits, influxd's shipped GOGC/GOMEMLIMIT).

    python -m bench.meters [--meters 10000] [--blocks 10] [--days 7] [--report-days 30]

1. Ingest: the pilot simulator (``firmware_sim.meter_blocks``) pre-generates every
   uplink of ``--meters`` meters in ``--blocks`` blocks for ``--days`` days, with 5 % of
   frames published 3 times (3 radio gateways, not merged) and 5 % 6 h late. A raw
   MQTT 3.1.1 QoS 1 publisher (``bench/ingest/mqttpub.py``: pipelined, no paho, so the
   load generator is not the bottleneck) floods them into Mosquitto, keeping at most
   ``--backlog`` messages ahead of what the worker has handled (the shipped broker
   queues at most 200,000 per client, then drops QoS 1 messages). ONE ``LpwaWorker``
   (the class ``akita cloud lpwa`` runs) runs in a child process (spawned), with the
   SQLite registry and the InfluxDB store, WITHOUT the detection hook (``--config``'s
   detectors are not part of this figure). Printed: messages/s and distinct uplinks/s
   from the worker's first received message to its last acknowledgement, the worker
   process's CPU s per 10k messages over that window, and the check that every uplink
   was stored exactly once: distinct stored meter-hours (``count("index")``, a point's
   key is the meter and its hour) against the hours of the distinct frames sent, the
   lines the worker wrote against the same figure (a duplicate written would show), and
   the duplicates it dropped against those injected.
2. Report: ``--meters`` meters x ``--report-days`` days of hourly readings are written
   STRAIGHT to InfluxDB (not through MQTT and the worker, to save time), each line made
   by the real line encoder (``cloud.ingest.encode.Encoder``) and posted with
   ``InfluxStore.write_lines`` (``akita.pilot_sim.meter_lines``): hourly use from the
   simulator's households (``firmware_sim.meters.hour_use``), battery (the simulator's
   draining model, ``battery_pct``), alarm bits and radio on every 6th hour as the codec
   gives them; inlets as ``akita.pilot_sim.store_inlets``. Then what ``akita pilot
   report`` does (open store and registry, ``build``, print, write JSON/CSV) is timed:
   once right after the bulk write (influxd snapshotting and compacting meanwhile),
   then once influxd has been idle 15 s (the wait is printed).

The load average is printed with the figures: the machine's 2 cores are shared, so the
figures are noisy. Every wait is bounded; ``--max-s`` bounds the whole run.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from akita.pilot_sim import meter_lines, provision, store_inlets  # noqa: E402
from bench.ingest.mqttpub import Publisher  # noqa: E402
from bench.ingest.run import deploy_influxd_env, start_mosquitto  # noqa: E402
from firmware_sim import meter_blocks  # noqa: E402
from tests.servers import Influx, _stop, free_port, require_binary  # noqa: E402

NS = "ns-akita"
HOUR = 3600


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


# --- the worker (child process) ------------------------------------------------------


def worker_main(port: int, store_url: str, db_url: str, expected: int, handled: Any,
                results: Any, timeout_s: float) -> None:  # fmt: skip
    """One LPWA worker until ``expected`` messages are handled and acknowledged."""
    from cloud.db.base import make_engine, make_sessionmaker
    from cloud.lpwa.worker import LpwaSettings, LpwaWorker
    from cloud.registry import Registry
    from cloud.store import open_store

    class Timed(LpwaWorker):
        first_rx = 0.0
        last_ack = 0.0

        def _take(self, msg: Any, out: Any) -> None:
            if not self.first_rx:
                self.first_rx = time.monotonic()
            super()._take(msg, out)

        def _flush(self, **kw: Any) -> None:
            had = bool(self._acks)
            super()._flush(**kw)
            if had and not self._acks:
                self.last_ack = time.monotonic()

    registry = Registry(make_sessionmaker(make_engine(db_url)))
    registry.devices()  # warm the registry's cache before the clock starts
    worker = Timed(LpwaSettings(broker_port=port, client_id="akita-lpwa-bench"),
                   open_store(store_url), registry)  # fmt: skip
    worker.start()
    if not worker.wait_ready(30):
        results.put({"error": "worker did not subscribe in 30 s"})
        return
    cpu0 = time.process_time()
    results.put({"ready": True})
    deadline = time.monotonic() + timeout_s
    done = 0
    while time.monotonic() < deadline:
        done = sum(v for k, v in dict(worker.counts).items() if k != "lines")
        handled.value = done
        if done >= expected and not worker._acks and not worker._lines:
            break
        time.sleep(0.05)
    cpu = time.process_time() - cpu0
    worker.stop()
    results.put({"counts": dict(worker.counts), "first_rx": worker.first_rx,
                 "last_ack": worker.last_ack, "cpu_s": cpu, "handled": done,
                 "timed_out": done < expected})  # fmt: skip


# --- part 1: ingest --------------------------------------------------------------------


def frames(events: list[Any]) -> tuple[int, int]:
    """(distinct frames, meter-hours they hold): a frame is (devEui, fCnt, payload)."""
    seen: dict[tuple[str, int, str], int] = {}
    for e in events:
        up = json.loads(e.payload)
        key = (up["deviceInfo"]["devEui"], up["fCnt"], up["data"])
        if key not in seen:
            seen[key] = base64.b64decode(up["data"])[5]  # akita-hourly-v1: byte 5 = hours
    return len(seen), sum(seen.values())


def count_points(influx: Influx, db: str) -> int:
    r = influx.query('SELECT count("index") FROM "water_meter"', db)
    series = r["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def ingest(args: argparse.Namespace, influx: Influx, port: int, db_url: str,
           registry: Any, deadline: float) -> dict[str, Any]:  # fmt: skip
    from cloud.store import open_store

    t = time.monotonic()
    start = (int(time.time()) // HOUR - int(args.days * 24) - 1) * HOUR
    per_block = args.meters // args.blocks
    pilot = meter_blocks.blocks(args.blocks, per_block, args.seed, start, args.days)
    provision(registry, pilot, NS)
    events = meter_blocks.events(pilot, NS, start, args.days, args.seed, triple=args.triple,
                                 late=args.late)  # fmt: skip
    distinct, hours = frames(events)
    print(f"generated {len(events):,} messages ({distinct:,} distinct uplinks, "
          f"{hours:,} meter-hours) for {per_block * args.blocks:,} meters x {args.days:g} days"
          f" in {time.monotonic() - t:.1f} s", flush=True)  # fmt: skip
    store_url = f"influx+http://127.0.0.1:{influx.port}/meters_ingest"
    store: Any = open_store(store_url)
    store.init_db()
    ctx = mp.get_context("spawn")
    handled = ctx.Value("q", 0)
    results = ctx.Queue()
    budget = max(10.0, deadline - time.monotonic() - 5)
    proc = ctx.Process(target=worker_main, args=(port, store_url, db_url, len(events), handled,
                                                 results, budget))  # fmt: skip
    proc.start()
    try:
        msg = results.get(timeout=60)
        if "error" in msg:
            raise RuntimeError(msg["error"])
        pub = Publisher("127.0.0.1", port, "ns-akita-bench", max_inflight=2000)
        topics: dict[str, bytes] = {}
        t_pub = time.monotonic()
        for i, e in enumerate(events):
            if i % 1000 == 0:
                while i - handled.value > args.backlog:
                    if time.monotonic() > deadline:
                        raise TimeoutError("publishing: the worker fell behind past --max-s")
                    pub.poll(0.01)
                    pub.take_acked()
            topic = topics.get(e.topic)
            if topic is None:
                topic = topics[e.topic] = Publisher.topic(e.topic)
            pub.add(topic, e.payload, 0)
        pub.wait_all()
        pub_s = time.monotonic() - t_pub
        pub.close()
        res = results.get(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    if res.get("timed_out"):
        raise TimeoutError(f"worker handled {res['handled']:,} of {len(events):,} in time")
    counts = res["counts"]
    window = res["last_ack"] - res["first_rx"]
    points = count_points(influx, "meters_ingest")
    return {
        "messages": len(events),
        "distinct_uplinks": distinct,
        "publish_s": round(pub_s, 2),
        "worker_window_s": round(window, 2),
        "messages_per_s": round(len(events) / window),
        "uplinks_per_s": round(distinct / window),
        "worker_cpu_s_per_10k_messages": round(res["cpu_s"] / len(events) * 10_000, 3),
        "expected_meter_hours": hours,
        "stored_meter_hours": points,
        "lines_written": counts.get("lines", 0),
        "duplicates_injected": len(events) - distinct,
        "duplicates_dropped": counts.get("duplicate", 0),
        "verdicts": {k: v for k, v in counts.items() if k != "lines"},
        "stored_exactly_once": points == hours == counts.get("lines", 0)
        and counts.get("duplicate", 0) == len(events) - distinct,
    }


# --- part 2: the report ----------------------------------------------------------------


def store_readings(store: Any, registry: Any, pilot: list[Any], start: int, days: float,
                   seed: int, deadline: float) -> int:  # fmt: skip
    """Hourly readings of every meter, through the real encoder, straight to the store."""
    from cloud.ingest.encode import Encoder

    encoder = Encoder(registry)
    lines: list[str] = []
    n = 0
    for block in pilot:
        for m in block.meters:
            if time.monotonic() > deadline:
                raise TimeoutError("storing the report's readings: past --max-s")
            lines += meter_lines(encoder, m, NS, start, days, seed)
            if len(lines) >= 100_000:
                store.write_lines("\n".join(lines))
                n += len(lines)
                lines = []
    if lines:
        store.write_lines("\n".join(lines))
        n += len(lines)
    return n


def report(args: argparse.Namespace, influx: Influx, db_url: str, registry: Any,
           work: Path, deadline: float) -> dict[str, Any]:  # fmt: skip
    from rich.console import Console

    from cloud.pilot import output
    from cloud.pilot.cli import _open
    from cloud.pilot.report import build, leak_alerts
    from cloud.store import open_store

    start = (int(time.time()) // HOUR - int(args.report_days * 24) - 1) * HOUR
    per_block = args.meters // args.blocks
    pilot = meter_blocks.blocks(args.blocks, per_block, args.seed, start, args.report_days)
    provision(registry, pilot, NS)  # the same meters as part 1 (same seed): no change
    url = f"influx+http://127.0.0.1:{influx.port}/meters_report"
    store: Any = open_store(url)
    store.init_db()
    t = time.monotonic()
    n = store_readings(store, registry, pilot, start, args.report_days, args.seed, deadline)
    n += store_inlets(store, registry, pilot, start, args.report_days)
    write_s = time.monotonic() - t
    print(f"stored {n:,} readings directly (encoder + InfluxStore.write_lines) in "
          f"{write_s:.1f} s; {load()}", flush=True)  # fmt: skip
    t0 = datetime.fromtimestamp(start, UTC)
    t1 = datetime.fromtimestamp(start + int(args.report_days * 86_400), UTC)

    def busy() -> bool:
        """influxd is snapshotting its cache or compacting TSM files (``/debug/vars``)."""
        with urllib.request.urlopen(f"{influx.url}/debug/vars", timeout=10) as r:
            stats = json.load(r)
        for key, s in stats.items():
            values = s.get("values", {}) if isinstance(s, dict) else {}
            if key.startswith("tsm1_cache") and values.get("memBytes"):
                return True
            if key.startswith("tsm1_engine") and any(
                v for f, v in values.items() if f.endswith("CompactionsActive")
            ):
                return True
        return False

    # the first build runs right after the bulk write, while influxd snapshots and
    # compacts 7M fresh points; the next ones once it has been idle for 15 s, as a
    # pilot's month of hourly writes is long compacted when its report is built
    times = []
    settle_s = None
    for run in range(args.report_runs):
        if run == 1:
            t = time.monotonic()
            idle_since = None
            while time.monotonic() < min(deadline, t + 600):
                if busy():
                    idle_since = None
                elif idle_since is None:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since >= 15:
                    break
                time.sleep(1)
            settle_s = round(time.monotonic() - t, 1)
            print(f"influxd idle for 15 s (no cache snapshot or compaction) after "
                  f"{settle_s} s; {load()}", flush=True)  # fmt: skip
        t = time.monotonic()
        series, sm, devices = _open(None, url, db_url)
        result = build(series, devices, leak_alerts(sm, t0, t1), t0, t1)
        output.show(result, Console(file=io.StringIO()))
        output.write(result, work / "report")
        times.append(time.monotonic() - t)
        print(f"report build {run + 1}: {times[-1]:.2f} s; {load()}", flush=True)
    # the battery trend against the simulator's drain (meters that do not die)
    from firmware_sim.meters import battery_slope_per_30d

    rows = {m.device: m for m in result.meters}
    live = [m for b in pilot for m in b.meters if m.label != "dead"]
    simulated = statistics.median(battery_slope_per_30d(m) for m in live)
    slopes = [s for m in live if (s := rows[m.dev_eui].battery_slope) is not None]
    got = statistics.median(slopes) if slopes else None
    print(f"battery slope, % per 30 days, median of {len(live):,} live meters: report "
          f"{got if got is None else round(got, 3)}, simulated {simulated:.3f}; fleet "
          f"(all meters) {result.battery_slopes}", flush=True)  # fmt: skip
    return {
        "meters": len(result.meters),
        "days": args.report_days,
        "readings_stored": n,
        "store_s": round(write_s, 1),
        "report_s": [round(x, 2) for x in times],
        "settle_s": settle_s,
        "read_success_rate": round(result.read_rate, 4),
        "battery_slope_median_live": got,
        "battery_slope_median_simulated": simulated,
    }


# --- main ------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.meters", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--meters", type=int, default=10_000)
    p.add_argument("--blocks", type=int, default=10)
    p.add_argument("--days", type=float, default=7.0, help="simulated days of uplinks")
    p.add_argument("--report-days", type=float, default=30.0, help="days stored for the report")
    p.add_argument("--report-runs", type=int, default=2, help="report builds timed")
    p.add_argument("--triple", type=float, default=0.05, help="share of frames sent 3 times")
    p.add_argument("--late", type=float, default=0.05, help="share of uplinks 6 h late")
    p.add_argument("--backlog", type=int, default=100_000,
                   help="most messages published ahead of the worker")  # fmt: skip
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--skip", choices=("ingest", "report"), help="leave one part out")
    p.add_argument("--max-s", type=float, default=600.0, help="bound on the whole run")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()
    deadline = time.monotonic() + args.max_s
    from cloud.db.base import create_all, make_engine, make_sessionmaker
    from cloud.registry import Registry

    print(f"start: {load()}", flush=True)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-meters-") as tmp:
        work = Path(tmp)
        mosq, port = start_mosquitto(work)
        (work / "influx").mkdir()
        influx = Influx(require_binary("influxd", "influxdb"), work / "influx", free_port(),
                        free_port(), env=deploy_influxd_env())  # fmt: skip
        try:
            influx.start()
            db_url = f"sqlite:///{work}/akita.db"
            engine = make_engine(db_url)
            create_all(engine)
            registry = Registry(make_sessionmaker(engine))
            if args.skip != "ingest":
                out["ingest"] = r = ingest(args, influx, port, db_url, registry, deadline)
                print(f"ingest: {r['messages_per_s']:,} messages/s = {r['uplinks_per_s']:,} "
                      f"distinct uplinks/s through one worker ({r['messages']:,} messages in "
                      f"{r['worker_window_s']} s, first received -> last acknowledged); worker "
                      f"CPU {r['worker_cpu_s_per_10k_messages']} s per 10k messages",
                      flush=True)  # fmt: skip
                print(f"  stored meter-hours {r['stored_meter_hours']:,} / expected "
                      f"{r['expected_meter_hours']:,}; lines written {r['lines_written']:,}; "
                      f"duplicates dropped {r['duplicates_dropped']:,} / injected "
                      f"{r['duplicates_injected']:,}; exactly once: {r['stored_exactly_once']}"
                      f"; {load()}", flush=True)  # fmt: skip
            if args.skip != "report":
                out["report"] = r = report(args, influx, db_url, registry, work, deadline)
                print(f"report: {r['meters']:,} meters x {r['days']:g} days: built in "
                      f"{', '.join(f'{s} s' for s in r['report_s'])} (runs); read success "
                      f"{r['read_success_rate']}; {load()}", flush=True)  # fmt: skip
        finally:
            influx.stop()
            _stop(mosq)
    out["load_average"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
