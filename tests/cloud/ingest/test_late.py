"""Late readings get their 1-minute aggregates (real Mosquitto and InfluxDB).

The continuous queries look back 2 minutes; a spool emptied after an uplink outage
delivers readings far older than that. Without the ingest's re-aggregation their minutes
would have no aggregates, and the aggregates are what is kept for ten years.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from cloud.cli import app
from cloud.errors import StoreError
from cloud.ingest import IngestSettings, IngestWorker
from cloud.ingest.late import OUTAGE_MARGIN_MS, LateAggregates
from cloud.metrics import Metrics
from cloud.registry import Registry
from cloud.store.influx import InfluxStore
from tests.cloud.ingest.helpers import Publisher, batch, recent, wait_until
from tests.servers import Influx, Mosquitto


def aggregates(influx: Influx, db: str, gateway: str) -> dict[str, list[Any]]:
    """device -> [minute, mean, min, max] of flow in agg_1m, for one gateway."""
    q = (
        'SELECT "mean_flow", "min_flow", "max_flow" FROM "agg_1m"."water_block" '
        f'WHERE "gateway" = \'{gateway}\' GROUP BY "device"'
    )
    series = influx.query(q, db)["results"][0].get("series", [])
    return {s["tags"]["device"]: [v for row in s["values"] for v in row] for s in series}


def test_late_readings_get_their_minutes_aggregated(
    mosquitto: Mosquitto,
    influx: Influx,
    influx_db: str,
    influx_store: InfluxStore,
    unique: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="cloud.ingest.late")
    settings = IngestSettings(
        broker_port=mosquitto.port, client_id=f"ingest-{unique}", group=None, batch_time_s=0.05
    )
    worker = IngestWorker(settings, influx_store, Registry(first_seen=True), metrics=Metrics())
    worker.start()
    pub = Publisher(mosquitto.port, f"pub-{unique}")
    late_gw, fresh_gw = f"late{unique}", f"fresh{unique}"
    try:
        assert worker.wait_ready()
        t0 = recent(minutes=30).replace(
            second=0
        )  # a spool emptied after half an hour without uplink
        pub.publish_batches([batch(late_gw, seq, 50, t0) for seq in range(3)])
        now = datetime.now(UTC)
        pub.publish_batches([batch(fresh_gw, 0, 50, now - timedelta(seconds=2))])
        got = wait_until(lambda: aggregates(influx, influx_db, late_gw).get(f"wb-{late_gw}-7"))
        minute = t0.replace(second=0)
        # device 7 has flow 7, 57, 107 (seq 0..2) in that minute
        assert got == [int(minute.timestamp() * 1000), 57.0, 7.0, 107.0]
        assert len(aggregates(influx, influx_db, late_gw)) == 50
        # counted just after the recompute returns: under load the test may see the
        # aggregates first
        wait_until(lambda: worker.metrics.value("akita_ingest_reaggregations_total") >= 1)
        done = [r.getMessage() for r in caplog.records if "aggregates_recomputed" in r.getMessage()]
        assert done and all(f"gateway={late_gw} " in m for m in done)  # not the fresh one
    finally:
        worker.stop()
        pub.close()


def test_reaggregate_recomputes_one_gateways_minutes_only(
    influx: Influx, influx_db: str, influx_store: InfluxStore
) -> None:
    t0 = recent(minutes=40).replace(second=0)
    lines = [
        f"water_block,device=wb-{g}-1,gateway={g},kind=water_block flow={f} "
        f"{int((t0 + timedelta(seconds=s)).timestamp() * 1000)}"
        for g in ("ga", "gb")
        for s, f in ((0, 1.0), (30, 3.0), (70, 10.0))
    ]
    influx_store.write_lines("\n".join(lines))
    start = int(t0.timestamp() * 1000)
    influx_store.reaggregate("water_block", start, start + 5_000, gateway="ga")
    assert aggregates(influx, influx_db, "ga") == {"wb-ga-1": [start, 2.0, 1.0, 3.0]}
    assert aggregates(influx, influx_db, "gb") == {}  # another gateway: untouched
    influx_store.reaggregate("water_block", start, start + 70_000)  # both minutes, all
    assert aggregates(influx, influx_db, "gb") == {
        "wb-gb-1": [start, 2.0, 1.0, 3.0, start + 60_000, 10.0, 10.0, 10.0]
    }
    with pytest.raises(StoreError, match="has no aggregates"):
        influx_store.reaggregate("ingest", start, start)


def test_cli_reaggregate(influx: Influx, influx_db: str, influx_store: InfluxStore) -> None:
    t0 = recent(minutes=50).replace(second=0)
    ms = int(t0.timestamp() * 1000)
    influx_store.write_lines(f"water_block,device=wb-c-1,gateway=gc,kind=water_block flow=4 {ms}")
    env = {"AKITA_STORE__URL": f"influx+http://127.0.0.1:{influx.port}/{influx_db}"}
    args = ["reaggregate", "--from", t0.isoformat(), "--to", t0.isoformat()]
    r = CliRunner().invoke(app, [*args, "--kind", "water_block"], env=env)
    assert r.exit_code == 0, r.output
    assert aggregates(influx, influx_db, "gc") == {"wb-c-1": [ms, 4.0, 4.0, 4.0]}
    naive = CliRunner().invoke(app, ["reaggregate", "--from", "2026-11-28T09:00", "--to", "x"])
    assert naive.exit_code == 2 and "2026-11-28T09:00" in naive.output and "offset" in naive.output
    bad = CliRunner().invoke(app, [*args, "--kind", "toaster"], env=env)
    assert bad.exit_code == 2 and "toaster" in bad.output


class _FlakyStore:
    """Refuses (retryable) until told otherwise; records what it recomputed."""

    def __init__(self) -> None:
        self.up = False
        self.done: list[tuple[str, int, int, str | None]] = []

    def reaggregate(
        self, measurement: str, start_ms: int, end_ms: int, gateway: str | None = None
    ) -> None:
        if not self.up:
            raise StoreError("connection refused", retryable=True)
        self.done.append((measurement, start_ms, end_ms, gateway))


def test_ranges_merge_and_wait_while_the_store_is_down() -> None:
    store = _FlakyStore()
    late = LateAggregates(store, ["water_block", "vehicle"])
    late.note_outage(1_000_000, 2_000_000)
    late.note_outage(1_500_000, 2_500_000)  # merged into one range per kind
    assert late.run() == 0 and len(late) == 2  # down: nothing lost
    store.up = True
    assert late.run() == 2 and len(late) == 0
    first = 1_000_000 - OUTAGE_MARGIN_MS
    assert sorted(store.done) == [
        ("vehicle", first, 2_500_000, None),
        ("water_block", first, 2_500_000, None),
    ]
