"""Nothing acknowledged is lost: kill -9 a worker mid-stream, stop InfluxDB for 30 s,
split a stream over two workers of one shared-subscription group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from cloud.ingest import IngestSettings, IngestWorker
from cloud.metrics import Metrics
from cloud.registry import Registry
from cloud.store import open_store
from cloud.store.influx import InfluxStore
from schemas import GatewayState, GatewayStatus, encode_model, topics
from tests.cloud.ingest.helpers import (
    Publisher,
    batch,
    count,
    flows,
    recent,
    start_group,
    wait_until,
)
from tests.servers import Influx, Mosquitto, running_influx

ROOT = Path(__file__).resolve().parents[3]


def expected_flows(batches: list) -> list[float]:  # type: ignore[type-arg]
    return sorted(r.values.flow for b in batches for r in b.readings)


def start_worker_process(
    mosquitto: Mosquitto, store_url: str, unique: str
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "AKITA_INGEST_BATCH_SIZE": "500", "AKITA_INGEST_BATCH_TIME_S": "0.02"}
    env["AKITA_INGEST_FIRST_SEEN"] = "true"  # no registry database: adopt the test's devices
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloud.ingest",
            "--store",
            store_url,
            "--broker-port",
            str(mosquitto.port),
            "--client-id",
            f"kill-{unique}",
            "--group",
            f"k{unique}",
            "--log-level",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
    )


def test_kill_9_mid_stream_loses_nothing_and_duplicates_nothing(
    mosquitto: Mosquitto, influx: Influx, influx_db: str, unique: str
) -> None:
    url = f"influx+http://127.0.0.1:{influx.port}/{influx_db}"
    store = open_store(url)
    store.init_db()  # type: ignore[attr-defined]
    store.close()
    t0 = recent()
    batches = [batch(f"gk{g}", seq, 50, t0) for seq in range(100) for g in range(4)]  # 20,000
    pub = Publisher(mosquitto.port, f"pub-{unique}")
    birth = GatewayStatus(gateway_id="gk0", state=GatewayState.ONLINE, ts=t0)
    pub.publish(topics.status("gk0"), encode_model(birth), retain=True)
    proc = start_worker_process(mosquitto, url, unique)
    try:
        # the worker has subscribed once it writes the retained birth message's state
        wait_until(lambda: count(influx, influx_db, "gateway_health", "online") > 0, timeout=30)
        sender = threading.Thread(target=pub.publish_batches, args=(batches,))
        sender.start()
        wait_until(lambda: count(influx, influx_db) > 0, interval=0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        at_kill = count(influx, influx_db)
        sender.join()
        print(f"stored at kill: {at_kill}")
        assert at_kill < 20_000  # readings were still in flight when it died
        proc = start_worker_process(mosquitto, url, unique)
        wait_until(lambda: count(influx, influx_db) == 20_000, timeout=60)
        assert flows(influx, influx_db) == expected_flows(batches)  # each exactly once
    finally:
        pub.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_influx_down_30_s_then_everything_is_stored(
    mosquitto: Mosquitto, unique: str, tmp_path: Path
) -> None:
    (tmp_path / "influx").mkdir()
    with running_influx(tmp_path / "influx") as influx:
        store = open_store(f"influx+http://127.0.0.1:{influx.port}/akita?retries=0&timeout=2")
        assert isinstance(store, InfluxStore)
        store.init_db()
        worker = IngestWorker(
            IngestSettings(
                broker_port=mosquitto.port,
                client_id=f"out-{unique}",
                batch_time_s=0.05,
                buffer_readings=2_000,  # small, so backpressure reaches the broker
                retry_initial_s=0.2,
                retry_max_s=2.0,
            ),
            store,
            Registry(first_seen=True),
            metrics=Metrics(),
        )
        worker.start()
        pub = Publisher(mosquitto.port, f"pub-{unique}")
        t0 = recent()
        batches = [batch("go", seq, 50, t0) for seq in range(200)]  # 10,000 readings
        try:
            assert worker.wait_ready()
            pub.publish_batches(batches[:20])
            wait_until(lambda: count(influx, "akita") == 1000)
            influx.stop()
            stream = threading.Thread(
                target=lambda: [
                    (pub.publish_batches(batches[i : i + 10]), time.sleep(1.0))
                    for i in range(20, 200, 10)
                ]
            )
            stream.start()  # ~18 s of stream while the store is down
            down = wait_until(lambda: not worker.health().store_ok and worker.health())
            assert down.store_error and down.store_down_since is not None
            assert not down.ok
            time.sleep(30)
            during = worker.health()
            assert not during.store_ok and during.buffer_depth > 0
            assert during.backpressure  # held at the bound, the rest waits in the broker
            influx.start()
            stream.join()
            wait_until(lambda: count(influx, "akita") == 10_000, timeout=60)
            assert flows(influx, "akita") == expected_flows(batches)
            after = wait_until(lambda: worker.health().store_ok and worker.health())
            assert after.ok and after.store_error is None
        finally:
            worker.stop()
            pub.close()
            store.close()


def test_two_workers_share_one_group_and_together_store_everything(
    mosquitto: Mosquitto, influx: Influx, influx_db: str, unique: str
) -> None:
    store = open_store(f"influx+http://127.0.0.1:{influx.port}/{influx_db}")
    store.init_db()  # type: ignore[attr-defined]
    workers = start_group(mosquitto.port, f"two{unique}", lambda _i: store)
    pub = Publisher(mosquitto.port, f"pub-{unique}")
    t0 = recent()
    batches = [batch(f"gs{g}", seq, 50, t0) for seq in range(50) for g in range(4)]
    try:
        assert all(w.wait_ready() for w in workers)
        pub.publish_batches(batches)
        wait_until(lambda: count(influx, influx_db) == 10_000)
        assert flows(influx, influx_db) == expected_flows(batches)
        shares = [w.metrics.value("akita_ingest_readings_total") for w in workers]
        assert all(s > 0 for s in shares), shares
        assert sum(shares) == 10_000
    finally:
        for w in workers:
            w.stop()
        pub.close()
        store.close()


def test_a_retired_worker_leaves_the_group_and_nothing_waits_for_it(
    mosquitto: Mosquitto, unique: str
) -> None:
    """Mosquitto queues a share for an offline member; retiring ends that."""
    stores = [open_store("sqlite:///:memory:") for _ in range(2)]
    workers = start_group(mosquitto.port, f"r{unique}", lambda i: stores[i])
    pub = Publisher(mosquitto.port, f"pub-{unique}")
    t0 = recent()
    try:
        assert all(w.wait_ready() for w in workers)
        workers[1].stop(end_session=True)
        pub.publish_batches([batch("gr", seq, 10, t0) for seq in range(40)])
        wait_until(lambda: workers[0].metrics.value("akita_ingest_readings_total") == 400)
    finally:
        workers[0].stop()
        pub.close()
        for st in stores:
            st.close()
