"""Line protocol follows the registry: a device's new site or district reaches its lines."""

from __future__ import annotations

from datetime import UTC, datetime

from cloud.ingest.encode import Encoder
from cloud.registry import Registry
from schemas import Batch
from schemas.devices import WaterBlockValues
from schemas.wire import DeviceInfo, GatewayMeta, WaterBlockReading

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def _meta(district: str) -> GatewayMeta:
    info = DeviceInfo(device_id="wb-1", kind="water_block", site="s1", district=district)
    return GatewayMeta(gateway_id="gw-1", ts=NOW, devices=[info])


def _lines(encoder: Encoder) -> list[bytes]:
    reading = WaterBlockReading(device_id="wb-1", ts=NOW, values={"flow": 1.5})  # type: ignore[arg-type]
    batch = Batch(gateway_id="gw-1", seq=1, sent_at=NOW, readings=[reading])
    lines: list[bytes] = []
    encoder.batch_lines(batch, lines, now_ms=NOW_MS, lead_ms=300_000, age_ms=10**10)
    return lines


def test_a_registry_change_seen_first_by_another_call_still_renews_every_cache() -> None:
    registry = Registry()
    registry.provision("gw-1", _meta("north").devices)
    encoder = Encoder(registry)
    assert b"district=north" in _lines(encoder)[0]
    assert registry.apply_meta(_meta("south")).changed == 1  # owned: meta may describe it
    # the single-reading path notices the change first; the batch path must not keep
    # the old prefix in its per-gateway cache
    values = WaterBlockValues(flow=2.0)
    assert "district=south" in encoder.reading_line("wb-1", "water_block", "gw-1", values, NOW_MS)
    (line,) = _lines(encoder)
    assert b"district=south" in line and b"north" not in line
