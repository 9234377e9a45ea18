"""Detector-tier benchmark, everything started here (Mosquitto, influxd, PostgreSQL when
Debian's is installed, else SQLite, in a temp dir).

    python -m bench.detect [--readings 300000] [--rate 1000] [--seconds 30]

It prints:

1. throughput: readings/s through one detector instance (one partition, one core):
   a backlog of hand-offs (50 readings each: water blocks, pump stations, flood sensors
   in equal parts) is queued in the broker while the instance is down, then drained;
   checkpoints (every 500 messages and every 5 s) and acknowledgements included, with
   the CPU seconds the instance spent per 100k readings;
2. end-to-end latency with 3 ingest workers (`akita cloud ingest`, subprocesses) and 2
   detector instances (4 partitions) at the city's load: simulated gateways publish
   ``--rate`` readings/s, each reading stamped when sent; 200 flood sensors each cross
   their first stage once during the run. Latency = from a reading's time to its alert
   being committed (p50/p99 over the flood-stage openings), and from a reading's time
   to its detector having it (p50/p99 over every reading), split into its stages:
   ingest (sent -> stored and handed off), broker (-> at the partition's client) and
   in_detector (-> applied: the partition worker's queue, or a seq-order hold).
   Publishing starts once every ingest worker has joined the group (telemetry sent
   before any member subscribed is dropped by the broker, which is not the tier's
   loss); afterwards it waits until every partition has every batch of its gateways
   and reports what was still missing 5 s after the last reading and at the end.
   ``--alert-burst``: the water blocks' pressure stays constant, so all 300 raise a
   stuck-sensor alert at about the same time, 5 s in (a burst of alerts, as a storm
   brings); without it the only alerts are the flood sensors' (stage, rate of rise).

Targets (issue 17): >= 20,000 readings/s per instance; p99 <= 500 ms at the city's load.
Figures are noisy on a shared 2-core machine: run it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.servers import Influx, Mosquitto, free_port  # noqa: E402

PER_BATCH = 50
KINDS = ("water_block", "manhole_pump", "flood_sensor")


def _values(kind: str, i: int) -> dict[str, Any]:
    """A quiet stream (no condition fires): the throughput of detection itself; what an
    alert costs is the alert lifecycle's (a few ms of database each, rare)."""
    if kind == "water_block":
        return {"flow": 40.0 + random.random() * 5, "pressure": 0.35 + random.random() * 0.01}
    if kind == "manhole_pump":
        return {"level": 0.4 + random.random() * 0.1, "pump1_running": False, "fault_code": 0}
    return {"depth": random.random(), "rain_intensity": 2.0}


def _batch(gateway: str, seq: int, devices: list[tuple[str, str]], t: datetime) -> Any:
    from schemas import Batch, reading_adapter

    readings = [
        reading_adapter.validate_python(
            {"device_id": d, "kind": k, "ts": t, "values": _values(k, seq)}
        )
        for d, k in devices
    ]
    return Batch(gateway_id=gateway, seq=seq, sent_at=t, readings=readings)


def _database(tmp: Path) -> tuple[str, Any]:
    """PostgreSQL of its own when Debian's is installed (as in production), else SQLite."""
    try:
        from tests.servers import Postgres, postgres_bindir

        bindir = postgres_bindir()
    except BaseException:  # pytest.skip outside pytest: no PostgreSQL here
        return f"sqlite:///{tmp / 'akita.db'}", None
    import shutil

    directory = Path(tempfile.mkdtemp(prefix="akita-bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    pg = Postgres(bindir=bindir, directory=directory, port=free_port())
    pg.start()
    return pg.create_database("akita"), pg


def _settings(db_url: str, store_url: str, port: int, sites: dict[str, Any]) -> Any:
    from cloud.settings import CloudSettings

    return CloudSettings.from_mapping(
        {
            "environment": "test",
            "store": {"url": store_url},
            "database": {"url": db_url},
            "alerts": {"write_measurement": False},
            "detect": {"sites": sites},
            "ingest": {
                "broker_host": "127.0.0.1",
                "broker_port": port,
                "group": "bench",
                "handoff": True,
                "detect_partitions": 4,
            },
        },
        source="bench",
    )


def throughput(tmp: Path, port: int, db_url: str, readings: int) -> dict[str, Any]:
    """Readings/s through one instance draining a backlog of one partition."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from cloud.detect import handoff
    from cloud.detect.tier import TierSettings
    from cloud.service import CloudService

    settings = _settings(db_url, f"sqlite:///{tmp / 'series.db'}", port, {})
    tier = TierSettings(name="bench-1", partitions=1, client_prefix="bench-tp")
    svc = CloudService(settings)
    svc.start(ingest=False, detect=tier)  # creates the partition's session
    deadline = time.monotonic() + 20
    while svc.tier is not None and not svc.tier.owned() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    svc.stop()  # the instance is down: the backlog waits in the broker

    gateways = max(1, readings // PER_BATCH // 200)
    devices = {
        f"bgw{g:03d}": [(f"d{g:03d}-{i:02d}", KINDS[i % 3]) for i in range(PER_BATCH)]
        for g in range(gateways)
    }
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-tp-pub")
    pub.max_inflight_messages_set(500)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    t0 = datetime.now(UTC) - timedelta(hours=1)
    sent = 0
    infos = []
    seq = 0
    while sent < readings:
        for g, devs in devices.items():
            b = _batch(g, seq, devs, t0 + timedelta(seconds=10 * seq))
            payload = handoff.encode(b, list(b.readings), reset=False, stored_at=time.time())
            infos.append(pub.publish(handoff.topic(0), payload, qos=1))
            sent += len(b.readings)
        seq += 1
    for info in infos:
        info.wait_for_publish(60)
    pub.loop_stop()
    pub.disconnect()

    proc = psutil.Process()
    svc = CloudService(settings)
    cpu0 = sum(proc.cpu_times()[:2])
    started = time.monotonic()
    svc.start(ingest=False, detect=tier)
    last = {g: seq - 1 for g in devices}
    while True:
        parts = svc.tier.partitions if svc.tier is not None else {}
        part = parts.get(0)
        if part is not None:
            with part.lock:
                done = part.order.applied() == last
            if done:
                break
        if time.monotonic() - started > 600:
            raise SystemExit("throughput: the backlog was not drained in 600 s")
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    cpu = sum(proc.cpu_times()[:2]) - cpu0
    svc.stop()
    return {
        "readings": sent,
        "seconds": round(elapsed, 2),
        "readings_per_s": round(sent / elapsed),
        "cpu_s_per_100k": round(cpu * 100_000 / sent, 3),
    }


def latency(
    tmp: Path,
    mosquitto: Mosquitto,
    influx: Influx,
    db_url: str,
    rate: float,
    seconds: float,
    *,
    alert_burst: bool = False,
) -> dict[str, Any]:
    """3 ingest workers (subprocesses) and 2 detector instances at ``rate`` readings/s.
    ``alert_burst``: the water blocks' pressure stays constant, so all 300 raise a
    stuck-sensor alert within about a second (a burst of alerts, as in a storm)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from cloud.detect.tier import Partition, TierSettings
    from cloud.service import CloudService
    from cloud.store import init_db
    from schemas import DeviceInfo, encode_batch, topics

    load_start = round(os.getloadavg()[0], 2)
    store = f"influx+http://127.0.0.1:{influx.port}/akita"
    init_db(store)
    gateways = 100
    floods = 200
    devices: dict[str, list[tuple[str, str]]] = {}
    for g in range(gateways):
        devs = [(f"wb-{g:03d}-{i}", "water_block") for i in range(3)]
        devs += [(f"fs-{g:03d}-{i}", "flood_sensor") for i in range(2)]
        devices[f"lgw{g:03d}"] = devs
    sites = {
        d: {"stages_cm": [10, 20, 30]}
        for devs in devices.values()
        for d, k in devs
        if k == "flood_sensor"
    }
    settings = _settings(db_url, store, mosquitto.port, sites)
    svc0 = CloudService(settings)
    for g, devs in devices.items():
        svc0.registry.provision(g, [DeviceInfo(device_id=d, kind=k) for d, k in devs])  # type: ignore[arg-type]
    svc0.stop()

    seen: list[float] = []  # reading -> detector, seconds
    applied: set[tuple[str, int, int]] = set()  # (gateway, seq, partition) detected
    alerts: list[float] = []  # reading -> alert committed, seconds
    # where a reading's time goes: sent -> stored and handed off (ingest), -> at its
    # partition's client (broker), -> applied (waiting for the partition's worker, or
    # held for a missing seq by SeqOrder)
    stages: dict[str, list[float]] = {"ingest": [], "broker": [], "in_detector": []}
    opened = 0
    lock = threading.Lock()
    original = Partition.take

    def take(self: Partition, items: Any, devices_: Any) -> Any:
        now = time.time()
        with lock:
            for item in items:
                h = item.handoff
                applied.add((h.batch.gateway_id, h.batch.seq, self.number))
                for r in h.batch.readings:
                    seen.append(now - r.ts.timestamp())
                    stages["ingest"].append(h.stored_at - r.ts.timestamp())
                    stages["broker"].append(item.received - h.stored_at)
                    stages["in_detector"].append(now - item.received)
        return original(self, items, devices_)

    Partition.take = take  # type: ignore[method-assign]
    fast = {"heartbeat_s": 0.5, "lease_ttl_s": 5.0}
    detectors = []
    for i in range(2):
        svc = CloudService(settings)

        def on_change(change: Any) -> None:
            nonlocal opened
            if change.action != "open":
                return
            with lock:
                opened += 1
                if change.alert.kind == "flood_stage":
                    alerts.append(time.time() - change.at.timestamp())

        svc.alerts.subscribe(on_change)
        svc.start(ingest=False, detect=TierSettings(name=f"bench-{i}", partitions=4, **fast))
        detectors.append(svc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        held = [len(d.tier.owned()) for d in detectors if d.tier is not None]
        if sum(held) == 4 and min(held) > 0:
            break
        time.sleep(0.2)
    env = {**os.environ, "AKITA_INGEST_DETECT_PARTITIONS": "4", "AKITA_INGEST_BATCH_TIME_S": "0.05"}
    logs = [tmp / f"ingest-{i}.log" for i in range(3)]
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cloud.ingest",
                "--store",
                store,
                "--broker-port",
                str(mosquitto.port),
                "--client-id",
                f"bench-ingest-{i}",
                "--group",
                "bench",
                "--db",
                db_url,
                "--log-level",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stderr=logs[i].open("wb"),
        )
        for i in range(3)
    ]
    cpu_procs = [psutil.Process(w.pid) for w in workers]
    # telemetry published before a worker has joined the group is not its to store
    spawned = time.monotonic()
    _wait_logged(logs, "broker_connected", 60)
    ready_s = round(time.monotonic() - spawned, 1)
    time.sleep(1.0)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-lat-pub")
    pub.max_inflight_messages_set(1000)
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    per_gateway = len(next(iter(devices.values())))
    batches_per_s = rate / per_gateway
    crossing = {g: random.uniform(0.2, 0.9) * seconds for g in devices}
    seqs = dict.fromkeys(devices, 0)
    started = time.time()
    sent = 0
    n = 0
    from schemas import Batch, reading_adapter

    while time.time() - started < seconds:
        gateway = list(devices)[n % gateways]
        n += 1
        now = datetime.now(UTC)
        flood = time.time() - started >= crossing[gateway]
        readings = []
        for d, k in devices[gateway]:
            if k == "water_block":
                pressure = 0.35 if alert_burst else 0.35 + random.random() * 0.01
                v: dict[str, Any] = {"flow": 40.0 + random.random(), "pressure": pressure}
            else:
                v = {"depth": 15.0 if flood and d.endswith("-0") else 1.0, "rain_intensity": 50.0}
            readings.append(
                reading_adapter.validate_python({"device_id": d, "kind": k, "ts": now, "values": v})
            )
        b = Batch(gateway_id=gateway, seq=seqs[gateway], sent_at=now, readings=readings)
        seqs[gateway] += 1
        pub.publish(topics.telemetry(gateway), encode_batch(b), qos=1)
        sent += len(readings)
        time.sleep(max(0.0, started + n / batches_per_s - time.time()))
    time.sleep(5)
    with lock:
        detected_5s = len(seen)
        late_5s = {(g, q) for g, q, _p in expected_keys(devices, seqs) - applied}
    # then until every partition has every batch of its gateways: late, or lost?
    expected = expected_keys(devices, seqs)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with lock:
            missing = expected - applied
        if not missing:
            break
        time.sleep(0.5)
    caught_up_s = round(time.monotonic() - deadline + 120, 1)
    cpu = sum(sum(p.cpu_times()[:2]) for p in cpu_procs)
    pub.loop_stop()
    pub.disconnect()
    for w in workers:
        w.terminate()
    for w in workers:
        w.wait(30)
    for d in detectors:
        d.stop()
    Partition.take = original  # type: ignore[method-assign]

    def pct(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return (
            round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3)
            if ordered
            else float("nan")
        )

    return {
        "offered_per_s": rate,
        "readings": sent,
        "ingest_workers_subscribed_after_s": ready_s,
        "detected_5s_after_the_last": detected_5s,
        "batches_not_yet_detected_5s_after_the_last": len(late_5s),
        "detected": len(seen),
        "batches_never_detected": len(missing),
        "all_detected_after_s": caught_up_s if not missing else None,
        "other_alerts_opened": opened - len(alerts),
        "reading_to_detector_p50_s": pct(seen, 0.5),
        "reading_to_detector_p99_s": pct(seen, 0.99),
        "flood_alerts": len(alerts),
        "flood_sensors_crossing": floods // 2,
        "reading_to_alert_p50_s": pct(alerts, 0.5),
        "reading_to_alert_p99_s": pct(alerts, 0.99),
        "ingest_cpu_s_total": round(cpu, 2),
        **{f"{k}_p50_p99_s": (pct(v, 0.5), pct(v, 0.99)) for k, v in stages.items()},
        "load_average_1m_start_end": (load_start, round(os.getloadavg()[0], 2)),
    }


def expected_keys(
    devices: dict[str, list[tuple[str, str]]], seqs: dict[str, int]
) -> set[tuple[str, int, int]]:
    """(gateway, seq, partition) of every batch sent, for each partition of its devices."""
    from cloud.detect.partitions import partition_of

    return {
        (g, q, partition_of(d, 4)) for g, devs in devices.items() for d, _k in devs
        for q in range(seqs[g])
    }  # fmt: skip


def _wait_logged(logs: list[Path], line: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(line not in p.read_text(errors="replace") for p in logs):
        if time.monotonic() > deadline:
            raise SystemExit(f"latency: an ingest worker did not log {line} in {timeout:g} s")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.detect",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--readings", type=int, default=300_000, help="throughput backlog")
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="readings/s offered (city storm)"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="latency run length")
    parser.add_argument(
        "--alert-burst",
        action="store_true",
        help="latency with 300 stuck-sensor alerts opening at once (constant pressure)",
    )
    parser.add_argument(
        "--only", choices=("throughput", "latency"), help="run one of the two measurements"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="akita-bench-detect-") as name:
        tmp = Path(name)
        (tmp / "mqtt").mkdir()
        (tmp / "influx").mkdir()
        mosquitto = Mosquitto(binary="mosquitto", directory=tmp / "mqtt", port=free_port())
        mosquitto.start()
        influx = Influx(
            binary="influxd", directory=tmp / "influx", port=free_port(), rpc_port=free_port()
        )
        influx.start()
        db_url, pg = _database(tmp)
        try:
            if args.only != "latency":
                tp = throughput(tmp, mosquitto.port, db_url, args.readings)
                print(json.dumps({"throughput_one_instance": tp}), flush=True)
            if args.only != "throughput":
                lat = latency(
                    tmp, mosquitto, influx, db_url, args.rate, args.seconds,
                    alert_burst=args.alert_burst,
                )  # fmt: skip
                print(json.dumps({"latency_3_ingest_2_detectors": lat}), flush=True)
        finally:
            influx.stop()
            mosquitto.stop()
            if pg is not None:
                pg.stop()
    if args.only is None:
        print(
            f"\nsummary: one instance {tp['readings_per_s']} readings/s "
            f"({tp['cpu_s_per_100k']} CPU s/100k; target >= 20000); "
            f"at {lat['offered_per_s']:g}/s with 3 ingest + 2 detectors: reading->alert "
            f"p50={lat['reading_to_alert_p50_s']}s p99={lat['reading_to_alert_p99_s']}s "
            f"(target p99 <= 0.5 s), reading->detector p50={lat['reading_to_detector_p50_s']}s "
            f"p99={lat['reading_to_detector_p99_s']}s; database {db_url.split(':')[0]}"
        )


if __name__ == "__main__":
    main()
