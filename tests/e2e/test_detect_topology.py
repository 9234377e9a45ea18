"""Acceptance of the detector tier (issue 17) on real Mosquitto, InfluxDB and PostgreSQL,
fed by the simulators' heavy-rain, pipe-burst and pump-failure scenarios (same seed).

- Same alerts under any topology: one `akita cloud run` process, then 3 ingest workers
  and 2 detector instances over 4 partitions: the same alerts and the same transitions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.detect.partitions import partition_of
from cloud.service import CloudService
from cloud.store import init_db
from tests.e2e.topology import (
    SCENARIOS,
    Feed,
    alert_rows,
    cloud_settings,
    detector,
    events,
    ingest_worker,
    provision,
    publish,
    scenario_feed,
)
from tests.servers import Influx, Mosquitto, Postgres, running_mosquitto, wait_for

PARTITIONS = 4
FAST = {"heartbeat_s": 0.5, "lease_ttl_s": 5.0, "checkpoint_s": 1.0}


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Feed:
    return scenario_feed(tmp_path_factory.mktemp("feed"), SCENARIOS, seed=7)


def caught_up(services: list[CloudService], feed: Feed, partitions: int) -> bool:
    """Every partition applied the last seq of every gateway whose devices it holds."""
    last: dict[str, int] = {}
    for b in feed.batches:
        last[b.gateway_id] = max(last.get(b.gateway_id, -1), b.seq)
    applied: dict[int, dict[str, int]] = {}
    for svc in services:
        assert svc.tier is not None
        for p, part in list(svc.tier.partitions.items()):
            with part.lock:
                applied[p] = part.order.applied()
    for gw, infos in feed.owners.items():
        for p in {partition_of(i.device_id, partitions) for i in infos}:
            if applied.get(p, {}).get(gw) != last[gw]:
                return False
    return True


@pytest.fixture
def store(influx: Influx, influx_db: str) -> Iterator[str]:
    url = f"influx+http://127.0.0.1:{influx.port}/{influx_db}"
    init_db(url)
    yield url


def test_same_alerts_in_one_process_and_with_3_ingest_workers_and_2_detectors(
    tmp_path: Path,
    feed: Feed,
    mosquitto: Mosquitto,
    postgres: Postgres,
    store: str,
    unique: str,
) -> None:
    # A: everything in one process (akita cloud run), alone in its shared group
    db_a = postgres.create_database(f"topo_a_{unique}")
    one = CloudService(cloud_settings(feed, db_a, store, mosquitto.port, f"ga{unique}"))
    provision(one, feed)
    one.start()
    try:
        assert one.ingest is not None and one.ingest.wait_ready(15)
        publish(mosquitto.port, f"pub-a-{unique}", feed.batches)
        wait_for("one process read every batch", lambda: caught_up([one], feed, 1), 120)
        rows_a, events_a = alert_rows(one), events(one)
    finally:
        one.stop()
    kinds = {r[0] for r in rows_a}
    assert {"flood_stage", "burst", "pump_fail_to_start"} <= kinds, rows_a

    # B: 3 ingest workers and 2 detector instances, on a broker and databases of their own
    (tmp_path / "mosquitto-b").mkdir()
    with running_mosquitto(tmp_path / "mosquitto-b") as broker:
        db_b = postgres.create_database(f"topo_b_{unique}")
        settings = cloud_settings(
            feed, db_b, store, broker.port, f"gb{unique}", handoff=True,
            detect_partitions=PARTITIONS,
        )  # fmt: skip
        detectors = [detector(settings, f"det-{i}", PARTITIONS, **FAST) for i in range(2)]
        workers = []
        try:
            provision(detectors[0], feed)
            sm = detectors[0].sessionmaker

            def both_hold_partitions() -> bool:
                held = [len(d.tier.owned()) for d in detectors if d.tier is not None]
                return sorted(held) != [0, PARTITIONS] and sum(held) == PARTITIONS

            wait_for("the 2 detectors share the partitions", both_hold_partitions, 30)
            workers = [
                ingest_worker(settings, f"ingest-{unique}-{i}", sm, PARTITIONS) for i in range(3)
            ]
            publish(broker.port, f"pub-b-{unique}", feed.batches)
            wait_for(
                "the tier read every batch", lambda: caught_up(detectors, feed, PARTITIONS), 120
            )
            rows_b, events_b = alert_rows(detectors[0]), events(detectors[0])
        finally:
            for w in workers:
                w.stop()
            for d in detectors:
                d.stop()
    assert rows_b == rows_a
    assert events_b == events_a
