"""The meter pilot's data for the Water meters dashboard, through the real path: pilot
blocks (``firmware_sim/meter_blocks.py``) provisioned and their inlets stored by
``akita/pilot_sim.py``, the meters' uplinks published as a network server would through
a real Mosquitto into the LPWA worker, whose stored hours go through the cloud service's
detectors and alert lifecycle (as ``akita cloud lpwa`` runs it), so meter_leak alerts
are in the alerts table and the ``alert`` measurement; the report built over the period
is stored as ``pilot_report`` points (``akita pilot report --store-figures``)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from akita.pilot_sim import provision, store_inlets
from cloud.lpwa.detection import MeterDetection
from cloud.lpwa.worker import LpwaSettings, LpwaWorker
from cloud.pilot import report
from cloud.pilot.points import points
from cloud.service import CloudService
from cloud.settings import CloudSettings
from firmware_sim import meter_blocks
from tests.cloud.lpwa.test_worker import NS, _handled, _Publisher
from tests.servers import Influx, running_mosquitto, wait_for

HOUR = 3600
DAYS = 3
BLOCKS, PER_BLOCK = 2, 40


@dataclass
class MeterRun:
    db: str
    start_ms: int
    end_ms: int
    report: report.Report


def load_meters(influx: Influx, tmp: Path, db: str) -> MeterRun:
    start = (int(time.time()) // HOUR - DAYS * 24 - 1) * HOUR
    # alerts open at the wall clock's time: the period runs to the next hour
    end = start + (DAYS * 24 + 2) * HOUR
    pilot = meter_blocks.blocks(BLOCKS, PER_BLOCK, seed=4, start_s=start, days=DAYS, dead=0.05)
    # the report's battery slope needs a meter's battery on two UTC days (daily means),
    # and a meter sends it with each 6-hour pack: the seed's dead meters die 19 and 24 h
    # in, so whether either showed its collapse depended on the hour the test ran (at
    # 23:00 UTC all their packs fell on one day); dying 50 h in, they span two days
    for b in pilot:
        b.meters[:] = [
            dataclasses.replace(m, dead_at_s=max(m.dead_at_s, start + 50 * HOUR))
            if m.label == "dead"
            else m
            for m in b.meters
        ]
    events = meter_blocks.events(pilot, NS, start, DAYS, seed=4, triple=0.05, late=0.05)
    data = {
        "store": {"url": f"influx+http://127.0.0.1:{influx.port}/{db}"},
        "database": {"url": f"sqlite:///{tmp}/meters.db"},
    }
    service = CloudService(CloudSettings.from_mapping(data, source="test"))
    try:
        service.store.init_db()  # type: ignore[attr-defined]
        provision(service.registry, pilot, NS)
        store_inlets(service.store, service.registry, pilot, start, (end - start) / 86_400)
        detection = MeterDetection(service)
        (tmp / "mosquitto").mkdir(exist_ok=True)
        with running_mosquitto(tmp / "mosquitto") as mosquitto:
            worker = LpwaWorker(
                LpwaSettings(broker_port=mosquitto.port, batch_time_s=0.05),
                service.store,
                service.registry,
                on_readings=detection.on_readings,
                on_tick=detection.on_tick,
            )
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
        t0, t1 = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
        leaks = report.leak_alerts(service.sessionmaker, t0, t1)
        built = report.build(service.store, service.registry.devices(), leaks, t0, t1)
        # what `akita pilot report --store-figures` writes, for the report panels
        service.store.write(points(built))
    finally:
        service.stop()
    return MeterRun(db, start * 1000, end * 1000, built)
