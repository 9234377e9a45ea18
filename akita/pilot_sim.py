"""Glue between the pilot simulator (:mod:`firmware_sim.meter_blocks`) and the cloud:
provision the blocks' meters and inlets in the registry, and store the inlets' readings
as the gateway ingest would (the same line format). It lives in ``akita/`` because cloud
never imports the simulator."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from cloud.ingest.encode import Encoder
from cloud.lpwa.codecs import ALARM_BITS
from cloud.registry import Registry
from firmware_sim.meter_blocks import PilotBlock, inlet_samples
from firmware_sim.meters import PACK_H, Meter, alarm_byte, battery_pct, hour_use
from schemas import DeviceInfo, DeviceKind
from schemas.kinds import KINDS

INLET_GATEWAY = "gw-pilot"
HOUR_S = 3600


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


def meter_lines(encoder: Encoder, m: Meter, ns: str, start_s: int, days: float,
                seed: int) -> Iterator[str]:  # fmt: skip
    """One meter's hourly readings as the LPWA worker stores them (its lines), without
    the uplinks: the index every hour, and on every ``PACK_H``-th hour (an uplink's
    newest) its state: battery from the simulator's model, alarm bits, radio. Nothing
    from ``dead_at_s`` on. For data volumes MQTT would take too long to carry."""
    values: Any = KINDS["water_meter"].values
    rng = random.Random(f"{seed}:{m.dev_eui}")
    index_l = rng.randrange(0, 500_000)
    for h in range(1, int(days * 24) + 1):
        end = start_s + h * HOUR_S
        if end >= m.dead_at_s:
            return
        index_l += hour_use(m, end, rng)
        if h % PACK_H:
            v = values(index=index_l / 1000)
        else:  # the uplink's newest hour: its state, as the codec gives it
            battery = battery_pct(m, end)
            bits = alarm_byte(m, [end - k * HOUR_S for k in range(PACK_H - 1, -1, -1)], battery)
            alarms = {name: bool(bits >> i & 1) for i, name in enumerate(ALARM_BITS)}
            v = values(index=index_l / 1000, reverse_volume=0.0, battery=float(battery),
                       rssi=float(rng.randint(-125, -90)), snr=1.0, **alarms)  # fmt: skip
        yield encoder.reading_line(m.dev_eui, "water_meter", ns, v, end * 1000)
