"""Small, real data for the API tests: a flood sensor registered through the registry,
its readings written to the store, and detections through the service."""

from __future__ import annotations

from datetime import datetime, timedelta

from cloud.service import CloudService
from schemas.wire import Batch, DeviceInfo, FloodSensorReading


def flood_batch(
    gateway: str, seq: int, device: str, start: datetime, depths: list[float], step_s: float = 60
) -> Batch:
    return Batch(
        gateway_id=gateway,
        seq=seq,
        sent_at=start + timedelta(seconds=step_s * len(depths)),
        readings=[
            FloodSensorReading(
                device_id=device,
                ts=start + timedelta(seconds=step_s * i),
                values={"depth": d, "rain_intensity": 5.0},  # type: ignore[arg-type]
            )
            for i, d in enumerate(depths)
        ],
    )


def register(service: CloudService, gateway: str, *devices: DeviceInfo) -> None:
    service.registry.provision(gateway, list(devices))


def store_batch(service: CloudService, batch: Batch) -> None:
    """What the ingest does before its on_batch hook: write the readings as points."""
    from cloud.store.base import Point

    points = []
    for r in batch.readings:
        tags = {"device": r.device_id, "gateway": batch.gateway_id, "kind": r.kind}
        tags.update(service.registry.tags_for(r.device_id))
        points.append(Point(r.kind, tags, r.values.present(), r.ts))
    service.store.write(points)


def seed_flood_device(service: CloudService, device: str, start: datetime) -> Batch:
    register(
        service,
        "gw-test",
        DeviceInfo(
            device_id=device,
            kind="flood_sensor",  # type: ignore[arg-type]
            site="underpass-1",
            district="central",
            area="中通",
            lat=39.717,
            lon=140.118,
            poll_interval_s=60,
        ),
    )
    batch = flood_batch("gw-test", 0, device, start, [2.0, 4.0, 12.0, 14.0, 22.0])
    store_batch(service, batch)
    service.handle_batch(batch, now=start + timedelta(minutes=5))
    return batch
