"""Helpers for the detector-tier topology tests: scenario readings from the simulators,
cut into gateway batches, and the processes of each topology."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.alerts.manager import AlertManager
from cloud.detect.dataset import load_export
from cloud.detect.tier import TierSettings
from cloud.ingest.settings import IngestSettings
from cloud.ingest.worker import IngestWorker
from cloud.metrics import Metrics
from cloud.registry import Registry
from cloud.service import CloudService
from cloud.settings import CloudSettings
from cloud.store import open_store
from firmware_sim.export import devices_json, write_csv
from firmware_sim.scenarios import build, days_to_recent
from schemas import Batch, DeviceKind, encode_batch, topics
from schemas.wire import DeviceInfo
from tests.cloud.ingest.helpers import Publisher

# the three scenarios, each limited to the device kind it is about
SCENARIOS = {
    "heavy_rain_flood": DeviceKind.FLOOD_SENSOR,
    "pipe_burst": DeviceKind.WATER_BLOCK,
    "pump_fail_to_start": DeviceKind.MANHOLE_PUMP,
}
KINDS = {**SCENARIOS, "water_leak": DeviceKind.WATER_BLOCK}
DAY = 86_400
PER_BATCH = 24  # readings per gateway batch


@dataclass
class Feed:
    """Batches of every gateway, in publishing order, and what to provision."""

    batches: list[Batch]
    owners: dict[str, list[DeviceInfo]]  # gateway -> devices
    sites: dict[str, dict[str, Any]]

    @property
    def readings(self) -> int:
        return sum(len(b.readings) for b in self.batches)


def scenario_feed(
    tmp: Path, names: Iterable[str], *, seed: int, shift_days: Mapping[str, int] | None = None
) -> Feed:
    """The scenarios' readings (shifted to end before now, so the ingest and InfluxDB's
    retention take them, or by ``shift_days``), two devices per gateway, ``PER_BATCH``
    readings a batch."""
    batches: list[Batch] = []
    owners: dict[str, list[DeviceInfo]] = {}
    sites: dict[str, dict[str, Any]] = {}
    for name in names:
        run = build(name, seed=seed)
        span = math.ceil(run.scenario.days)
        shift = days_to_recent(name, time.time()) - span - 1
        if shift_days is not None:
            shift = shift_days[name]
        run = build(name, seed=seed, shift_days=shift)
        path = tmp / f"{name}.csv"
        write_csv(run, path, kinds={KINDS[name]})
        info = devices_json(run)
        (tmp / f"{name}.devices.json").write_text(json.dumps(info))
        (tmp / f"{name}.labels.json").write_text(json.dumps(run.labels_json()))
        export = load_export(path)
        assert export.readings is not None
        devices = sorted({r.device_id for r in export.readings})
        gateway_of = {d: f"gw-{name[:5]}-{i // 2}" for i, d in enumerate(devices)}
        for d in devices:
            owners.setdefault(gateway_of[d], []).append(export.devices[d])
            sites[d] = export.sites.get(d, {})
        pending: dict[str, list[Any]] = {}
        seqs: dict[str, int] = {}
        for r in export.readings:
            gw = gateway_of[r.device_id]
            pending.setdefault(gw, []).append(r)
            if len(pending[gw]) == PER_BATCH:
                batches.append(_batch(gw, seqs, pending.pop(gw)))
        for gw, rest in sorted(pending.items()):
            batches.append(_batch(gw, seqs, rest))
    batches.sort(key=lambda b: (b.readings[0].ts, b.gateway_id))
    return Feed(batches, owners, sites)


def _batch(gw: str, seqs: dict[str, int], readings: list[Any]) -> Batch:
    seq = seqs.get(gw, 0)
    seqs[gw] = seq + 1
    return Batch(gateway_id=gw, seq=seq, sent_at=readings[-1].ts, readings=readings)


def cloud_settings(
    feed: Feed, db_url: str, store_url: str, port: int, group: str, **ingest: Any
) -> CloudSettings:
    data = settings_mapping(feed, db_url, store_url, port, group, **ingest)
    return CloudSettings.from_mapping(data, source="test")


def settings_mapping(
    feed: Feed, db_url: str, store_url: str, port: int, group: str, **ingest: Any
) -> dict[str, Any]:
    """The settings of every process of a topology test (a TOML file for subprocesses)."""
    return {
        "environment": "test",
        "store": {"url": store_url},
        "database": {"url": db_url},
        # hold-offs far longer than a test: whether an alert auto-resolves between two
        # readings then never depends on how fast a topology reads them
        "alerts": {"hold_off_s": 30 * 86400, "min_open_s": 0},
        # offline timers run on the wall clock, not on the readings' days-old times
        "detect": {"common": {"offline_kinds": []}, "sites": feed.sites},
        "ingest": {
            "broker_host": "127.0.0.1",
            "broker_port": port,
            "group": group,
            "client_id": f"{group}-run",
            **ingest,
        },
    }


def provision(service: CloudService, feed: Feed) -> None:
    for gw, infos in feed.owners.items():
        service.registry.provision(gw, infos)


def publish(port: int, client_id: str, batches: list[Batch]) -> None:
    pub = Publisher(port, client_id)
    try:
        infos = [
            pub.client.publish(topics.telemetry(b.gateway_id), encode_batch(b), qos=1)
            for b in batches
        ]
        for info in infos:
            info.wait_for_publish(timeout=60)
    finally:
        pub.client.loop_stop()
        pub.client.disconnect()


def ingest_worker(
    settings: CloudSettings, name: str, sessionmaker: Any, partitions: int
) -> IngestWorker:
    """A standalone worker as `akita cloud ingest` runs it: no detectors, hands off."""
    s = IngestSettings.model_validate(
        {
            **settings.ingest.model_dump(exclude={"client_id"}),
            "password": None,
            "client_id": name,
            "handoff": True,
            "detect_partitions": partitions,
        }
    )
    worker = IngestWorker(
        s, open_store(settings.store.url), Registry(sessionmaker), metrics=Metrics()
    )
    worker.start()
    assert worker.wait_ready(15)
    return worker


def detector(settings: CloudSettings, name: str, partitions: int, **tier: Any) -> CloudService:
    """A detector instance as `akita cloud detect` runs it."""
    service = CloudService(settings)
    service.start(ingest=False, detect=TierSettings(name=name, partitions=partitions, **tier))
    return service


def alert_rows(service: CloudService) -> list[tuple[Any, ...]]:
    """Every alert, as its lifecycle left it: the comparison key of the topology tests."""
    out = []
    for rec in service.alerts.query(limit=10_000):
        a = rec.alert
        out.append(
            (
                a.kind,
                a.device_id,
                a.severity.value,
                rec.extra.get("stage"),
                a.started_at,
                a.state.value,
            )
        )
    return sorted(out, key=repr)


def events(service: CloudService | AlertManager) -> list[tuple[Any, ...]]:
    """Every alert transition (open, update): one per stage change, none twice."""
    alerts = service.alerts if isinstance(service, CloudService) else service
    out = []
    for rec in alerts.query(limit=10_000):
        for e in alerts.events(rec.alert.id):
            out.append((rec.alert.kind, rec.alert.device_id, e.action, e.note, e.at))
    return sorted(out, key=repr)


def reference(feed: Feed, settings: CloudSettings, db_url: str) -> list[tuple[Any, ...]]:
    """The alert transitions of one detector engine fed every batch in order, without
    any broker, tier or failover: what every topology must reproduce."""
    from cloud.db.base import create_all, make_engine, make_sessionmaker
    from cloud.detect.engine import DetectorEngine

    engine = make_engine(db_url)
    create_all(engine)
    manager = AlertManager(make_sessionmaker(engine), settings.alerts)
    detectors = DetectorEngine(settings.detect)
    devices = {i.device_id: i for infos in feed.owners.values() for i in infos}
    for b in feed.batches:
        found = detectors.feed(b.readings, devices)
        for at in sorted({d.ts for d in found}):
            manager.handle([d for d in found if d.ts == at], at)
    out = events(manager)
    engine.dispose()
    return out
