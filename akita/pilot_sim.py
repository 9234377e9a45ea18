"""Glue between the pilot simulator (:mod:`firmware_sim.meter_blocks`) and the cloud:
provision the blocks' meters and inlets in the registry, and store the inlets' readings
as the gateway ingest would (the same line format). It lives in ``akita/`` because cloud
never imports the simulator."""

from __future__ import annotations

from typing import Any

from cloud.ingest.encode import Encoder
from cloud.registry import Registry
from firmware_sim.meter_blocks import PilotBlock, inlet_samples
from schemas import DeviceInfo, DeviceKind
from schemas.kinds import KINDS

INLET_GATEWAY = "gw-pilot"


def provision(registry: Registry, pilot: list[PilotBlock], ns: str) -> None:
    """Meters owned by the network server ``ns``, inlets by a gateway; both carry the
    block as their district (how the report assigns meters to blocks)."""
    meter, inlet = DeviceKind("water_meter"), DeviceKind("water_block")
    registry.provision(ns, [DeviceInfo(device_id=m.dev_eui, kind=meter, district=b.name)
                            for b in pilot for m in b.meters])  # fmt: skip
    registry.provision(INLET_GATEWAY, [DeviceInfo(device_id=b.inlet_id, kind=inlet,
                                                  district=b.name) for b in pilot])  # fmt: skip


def store_inlets(store: Any, registry: Registry, pilot: list[PilotBlock], start_s: int,
                 days: float) -> int:  # fmt: skip
    """Write every inlet's hourly readings; return how many."""
    encoder = Encoder(registry)
    lines = [
        encoder.reading_line(
            b.inlet_id,
            "water_block",
            INLET_GATEWAY,
            KINDS["water_block"].values(**v),
            int(t * 1000),
        )
        for b in pilot
        for t, v in inlet_samples(b, start_s, days)
    ]
    store.write_lines("\n".join(lines))
    return len(lines)
