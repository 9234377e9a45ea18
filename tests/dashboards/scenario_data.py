"""Load a simulator scenario into a store the way the cloud would hold it.

The simulator's export API (contract C) gives the readings, labels and devices. The
readings go through the ingest's own encoder (``cloud.ingest.encode.Encoder``, tags
from the real ``Registry`` after the gateways' meta messages); alerts come from the
real ``AlertManager`` fed one detection per fault label (the detectors themselves are
tested elsewhere; here the alert measurement just has to exist as the lifecycle writes
it); gateway health, device status and ingest self-metrics are written with the
encoder's points for contract I, at the cadence the edge and ingest report them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cloud.alerts.manager import AlertManager
from cloud.db.base import create_all, make_engine, make_sessionmaker
from cloud.detect.base import Detection
from cloud.ingest.encode import Encoder, ms
from cloud.registry import Registry
from cloud.store.base import Point
from firmware_sim.export import devices_json, export, write_csv
from firmware_sim.scenarios import build
from schemas import DeviceInfo, DeviceKind, DeviceStatus, GatewayHealth
from schemas.alert import Severity
from schemas.devices import values_model

# label kind -> the alert kind the detectors emit for it (contract C)
ALERT_KIND = {"gps_dropout": "vehicle_stale"}


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Export:
    csv: Path
    start: datetime
    end: datetime
    devices: list[DeviceInfo]
    facts: dict[str, dict[str, Any]]
    routes: dict[str, list[list[float]]]
    labels: list[dict[str, Any]] = field(default_factory=list)

    @property
    def gateways(self) -> dict[str, list[DeviceInfo]]:
        out: dict[str, list[DeviceInfo]] = {}
        for d in self.devices:
            out.setdefault(self.facts[d.device_id]["gateway"], []).append(d)
        return out

    def devices_json(self) -> dict[str, Any]:
        return json.loads(self.csv.with_name(self.csv.stem + ".devices.json").read_text())


def _read_sidecars(path: Path) -> Export:
    stem = path.name.removesuffix(".csv")
    labels = json.loads((path.parent / f"{stem}.labels.json").read_text())
    devices = json.loads((path.parent / f"{stem}.devices.json").read_text())
    return Export(
        csv=path,
        start=parse_ts(labels["start"]),
        end=parse_ts(labels["end"]),
        devices=[DeviceInfo.model_validate(d) for d in devices["devices"]],
        facts=devices["sites"],
        routes=devices["routes"],
        labels=labels["labels"],
    )


def export_scenario(directory: Path, scenario: str, *, days: float) -> Export:
    """``akita sim export SCENARIO --days D`` through its Python API."""
    out = directory / f"{scenario}.csv"
    export(scenario, out, days=days)
    return _read_sidecars(out)


def export_kind(directory: Path, scenario: str, kind: DeviceKind, *, days: float) -> Export:
    """The export of a scenario's devices of one kind only (a week of water blocks is
    cheap; a week of the whole fleet is not)."""
    run = build(scenario, days=days)
    run.plan.devices = [d for d in run.plan.devices if d.kind is kind]
    out = directory / f"{scenario}-{kind.value}.csv"
    write_csv(run, out)
    (directory / f"{out.stem}.devices.json").write_text(json.dumps(devices_json(run)))
    (directory / f"{out.stem}.labels.json").write_text(json.dumps(run.labels_json()))
    return _read_sidecars(out)


def readings(path: Path) -> Iterator[tuple[datetime, str, str, Any]]:
    """(ts, device_id, kind, values model) per device per timestamp, in file order."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        next(rows)
        key: tuple[str, str, str] | None = None
        values: dict[str, str] = {}
        for ts, dev, kind, fld, value in rows:
            if key != (ts, dev, kind):
                if key is not None:
                    yield parse_ts(key[0]), key[1], key[2], values_model(key[2])(**values)
                key, values = (ts, dev, kind), {}
            values[fld] = value
        if key is not None:
            yield parse_ts(key[0]), key[1], key[2], values_model(key[2])(**values)


@dataclass
class Loader:
    """Writes an export into a store through the cloud's registry, encoder and alerts."""

    store: Any
    registry: Registry
    alerts: AlertManager

    @classmethod
    def create(cls, store: Any, db_path: Path) -> Loader:
        engine = make_engine(f"sqlite:///{db_path}")
        create_all(engine)
        sm = make_sessionmaker(engine)
        return cls(store, Registry(sm), AlertManager(sm, store=store))

    def register(self, ex: Export) -> None:
        for gw, devs in sorted(ex.gateways.items()):
            self.registry.provision(gw, devs)

    def readings(
        self,
        ex: Export,
        *,
        lines: bool,
        kinds: set[str] | None = None,
        until: datetime | None = None,
    ) -> int:
        """The export's readings (of ``kinds``, up to ``until``); ``lines=True`` writes
        InfluxDB line protocol in bulk, otherwise store points."""
        enc = Encoder(self.registry)
        gateway = {d.device_id: ex.facts[d.device_id]["gateway"] for d in ex.devices}
        batch: list[Any] = []
        n = 0

        def flush() -> None:
            if lines:
                self.store.write_lines("\n".join(batch))
            else:
                self.store.write(batch)
            batch.clear()

        for ts, dev, kind, values in readings(ex.csv):
            if (kinds is not None and kind not in kinds) or (until is not None and ts > until):
                continue
            if lines:
                batch.append(enc.reading_line(dev, kind, gateway[dev], values, ms(ts)))
            else:
                batch.append(enc.reading_point(dev, kind, gateway[dev], values, ts))
            n += 1
            if len(batch) >= 20_000:
                flush()
        if batch:
            flush()
        return n

    def system(
        self,
        ex: Export,
        extra_labels: Sequence[dict[str, Any]] = (),
        *,
        step: timedelta = timedelta(minutes=1),
    ) -> None:
        """Gateway health every ``step``, device status for offline labels (moved into the
        range like :meth:`alerts_from_labels`), ingest self-metrics."""
        enc = Encoder(self.registry)
        points: list[Point] = []
        t = ex.start
        seq = 0
        while t < ex.end:
            for gw, devs in sorted(ex.gateways.items()):
                points.append(
                    enc.health_point(
                        GatewayHealth(
                            gateway_id=gw,
                            ts=t,
                            uptime_s=(t - ex.start).total_seconds(),
                            spool_depth=seq % 7,
                            spool_dropped=0,
                            devices_total=len(devs),
                            devices_online=len(devs),
                            poll_errors=0,
                            last_seq=seq,
                        )
                    )
                )
            points.append(
                enc.self_point(
                    "ingest-1",
                    {
                        "points_per_s": float(len(ex.devices)) / 60.0,
                        "lag_s": 0.2,
                        "dead_letters": seq // 60,
                        "gaps": seq // 120,
                        "duplicates": 0,
                        "buffer_depth": 0,
                    },
                    t,
                )
            )
            seq += 1
            t += step
        gateway = {d.device_id: ex.facts[d.device_id]["gateway"] for d in ex.devices}
        for i, label in enumerate([*ex.labels, *extra_labels]):
            if label["kind"] == "device_offline" and label["device_id"] in gateway:
                ts = parse_ts(label["start"])
                if not ex.start <= ts < ex.end:
                    ts = ex.start + timedelta(minutes=5 + i)
                status = DeviceStatus(
                    device_id=label["device_id"],
                    ts=ts,
                    state="offline",
                    reason=label["info"].get("reason", "offline"),
                )
                points.append(enc.status_point(gateway[label["device_id"]], status))
        self.store.write(points)

    def alerts_from_labels(
        self, labels: Sequence[dict[str, Any]], *, start: datetime, end: datetime
    ) -> int:
        """Open one alert per fault label; label times outside [start, end) are moved in
        (labels of other scenarios of the same seeded fleet are used for kinds the loaded
        one has none of)."""
        n = 0
        for i, label in enumerate(labels):
            if label["info"].get("context") or label["device_id"] == "city":
                continue
            ts = parse_ts(label["start"])
            if not start <= ts < end:
                ts = start + timedelta(minutes=5 + i)
            kind = ALERT_KIND.get(label["kind"], label["kind"])
            det = Detection(
                detector="scenario",
                kind=kind,
                device_id=label["device_id"],
                ts=ts,
                active=True,
                severity=Severity.MODERATE,
                title=f"{kind} {label['device_id']}",
                value=1.0,
                extra={k: v for k, v in label["info"].items() if k == "stage"},
            )
            n += len(self.alerts.handle([det], ts))
        return n


def labels_of(scenario: str) -> list[dict[str, Any]]:
    return [x.to_json() for x in build(scenario).labels]


def utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC)
