"""The pilot report on simulated blocks with a known NRW: meters' uplinks through a real
Mosquitto and the LPWA worker into a real InfluxDB, the inlets' readings stored as the
ingest stores them, then ``akita pilot report`` (its CLI, CSV and JSON)."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from typer.testing import CliRunner

from akita.cli import app
from akita.pilot_sim import provision, store_inlets
from cloud.db.base import create_all, make_engine, make_sessionmaker
from cloud.lpwa.worker import LpwaSettings, LpwaWorker
from cloud.pilot.report import build
from cloud.registry import Registry
from cloud.store.influx import InfluxStore
from firmware_sim import meter_blocks
from tests.cloud.lpwa.test_worker import NS, _handled, _Publisher
from tests.servers import Influx, Mosquitto, wait_for

HOUR = 3600
DAYS = 7
BLOCKS, PER_BLOCK = 3, 100


def test_report_nrw_matches_the_simulators_truth(
    mosquitto: Mosquitto, influx: Influx, influx_db: str, influx_store: InfluxStore,
    tmp_path: Path,
) -> None:  # fmt: skip
    start = (int(time.time()) // HOUR - DAYS * 24 - 1) * HOUR
    pilot = meter_blocks.blocks(BLOCKS, PER_BLOCK, seed=11, start_s=start, days=DAYS, dead=0.03)
    events = meter_blocks.events(pilot, NS, start, DAYS, seed=11, triple=0.05, late=0.05)
    db_url = f"sqlite:///{tmp_path}/akita.db"
    engine = make_engine(db_url)
    create_all(engine)
    registry = Registry(make_sessionmaker(engine))
    provision(registry, pilot, NS)
    store_inlets(influx_store, registry, pilot, start, DAYS)
    worker = LpwaWorker(LpwaSettings(broker_port=mosquitto.port, batch_time_s=0.05),
                        influx_store, registry)  # fmt: skip
    worker.start()
    assert worker.wait_ready()
    publisher = _Publisher(mosquitto.port)
    try:
        for e in events:
            publisher.publish(e.topic, e.payload)
        wait_for("every event handled", lambda: _handled(worker) == len(events), 60)
        wait_for("written", lambda: not worker._lines and not worker._acks, 10)
    finally:
        worker.stop()
        publisher.close()
    assert publisher.reasons() == []

    out = tmp_path / "report"
    args = ["pilot", "report", "--from", _iso(start), "--to", _iso(start + DAYS * 86_400),
            "--store", f"influx+http://127.0.0.1:{influx.port}/{influx_db}", "--db", db_url,
            "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Non-revenue water by block" in result.output
    report = json.loads((out / "pilot-report.json").read_text())
    blocks = {b["block"]: b for b in report["blocks"]}
    for b in pilot:
        truth = b.truth(start, start + DAYS * 86_400)
        got = blocks[b.name]["nrw_share"]
        print(f"{b.name}: report {got:.4f}, truth {truth:.4f}")
        assert abs(got - truth) <= 0.02, (b.name, got, truth)
    # read success: every live meter all 168 h, the dead ones fewer
    meters = {m["device"]: m for m in report["per_meter"]}
    assert len(meters) == BLOCKS * PER_BLOCK
    dead = [m.dev_eui for b in pilot for m in b.meters if m.label == "dead"]
    alive = [m.dev_eui for b in pilot for m in b.meters if m.label != "dead"]
    assert dead and all(meters[d]["read_rate"] < 1.0 for d in dead)
    assert all(meters[d]["read_rate"] == 1.0 for d in alive)
    assert report["read_success_rate"] < 1.0
    assert report["leak_alerts"] == 0  # no alerts table rows: no detection ran here
    with (out / "pilot-meters.csv").open() as f:
        assert len(list(csv.DictReader(f))) == BLOCKS * PER_BLOCK
    with (out / "pilot-blocks.csv").open() as f:
        assert [r["block"] for r in csv.DictReader(f)] == [b.name for b in pilot]


def test_a_block_without_inlet_says_why(influx_store: InfluxStore) -> None:
    start = (int(time.time()) // HOUR - 25) * HOUR
    pilot = meter_blocks.blocks(1, 5, seed=2, start_s=start, days=1)
    registry = Registry(None)
    provision(registry, pilot, NS)
    devices = {d: i for d, i in registry.devices().items() if i.kind.value == "water_meter"}
    from datetime import UTC, datetime

    report = build(influx_store, devices, {}, datetime.fromtimestamp(start, UTC),
                   datetime.fromtimestamp(start + 86_400, UTC))  # fmt: skip
    assert report.blocks[0].nrw_share is None
    assert report.blocks[0].note == "no water_block device with district 'block-0'"
    assert report.read_rate == 0.0


def _iso(t: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat()
