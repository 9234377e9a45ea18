"""Meter pilot blocks with a known non-revenue water (NRW) truth.

Each block is a district metered area: households behind smart meters
(:mod:`firmware_sim.meters`) and one inlet meter, the existing water-block simulator
(:class:`firmware_sim.models.water.WaterBlockModel`). The inlet's demand is the
households' expected use plus unbilled use (flushing, fire fighting, theft) and a
background leak of the mains, so

    inflow = sum of household use + unbilled use + leakage

and the truth of a block is ``(inflow - sum of household use) / inflow``, from the
inlet model's totaliser and the litres every household drew (also those a dead meter
never sent). Household leaks are behind the meters: metered, so revenue water.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from firmware_sim.meters import Event, Meter, all_events, fleet, hour_use
from firmware_sim.models.water import Leak, WaterBlockModel
from firmware_sim.timebase import HOUR_S


@dataclass
class PilotBlock:
    name: str  # the meters' and the inlet's registry district
    inlet_id: str
    meters: list[Meter]
    model: WaterBlockModel
    used_l: dict[str, float] = field(default_factory=dict)  # filled by events()

    def truth(self, start_s: float, end_s: float) -> float:
        """The NRW share over the simulated period (after :func:`events`)."""
        inflow = self.model.totaliser(end_s) - self.model.totaliser(start_s)
        return (inflow - sum(self.used_l.values()) / 1000) / inflow


def _use_factor(seed: int) -> float:
    """Mean hourly use of a household per litre of its ``mean_lpd / 24``: the demand
    curve, the noise and the idle night hours, measured once on a sample week."""
    rng = random.Random(seed)
    probe = Meter("probe", 0, 24.0)
    start = 1_780_272_000
    hours = [start + (h + 1) * HOUR_S for h in range(24 * 7)]
    return sum(hour_use(probe, t, rng) for _ in range(40) for t in hours) / (40 * len(hours))


def blocks(n_blocks: int, per_block: int, seed: int, start_s: int, days: float, *,
           dead: float = 0.01) -> list[PilotBlock]:  # fmt: skip
    """``n_blocks`` blocks of ``per_block`` households; NRW between about 5 and 30 %."""
    rng = random.Random(f"blocks:{seed}")
    meters = fleet(n_blocks * per_block, n_blocks, seed, start_s=start_s, days=days, dead=dead)
    factor = _use_factor(seed)
    out = []
    for b in range(n_blocks):
        members = [m for m in meters if m.block == b]
        households_m3h = sum(m.mean_lpd for m in members) / 24 / 1000 * factor
        leaks_m3h = sum(m.leak_lph for m in members) / 1000 / 2  # about half the period
        unbilled, leakage = rng.uniform(0.01, 0.05), rng.uniform(0.05, 0.25)
        model = WaterBlockModel(
            device_id=f"block-inlet-{b}",
            key=seed * 100 + b,
            t0=start_s,
            mean_flow=(households_m3h + leaks_m3h) * (1 + unbilled),
            totaliser0=rng.uniform(1e4, 1e6),
            leaks=[Leak(start=start_s - HOUR_S, flow=households_m3h * leakage)],
        )
        out.append(PilotBlock(f"block-{b}", model.device_id, members, model))
    return out


def events(pilot: list[PilotBlock], ns: str, start_s: int, days: float, seed: int, *,
           triple: float = 0.0, late: float = 0.0) -> list[Event]:  # fmt: skip
    """Every meter's events (publish order); fills each block's ``used_l`` truth."""
    out = []
    for block in pilot:
        out += all_events(block.meters, ns, start_s, days, seed, triple=triple, late=late,
                          truth=block.used_l)  # fmt: skip
    out.sort(key=lambda e: e.publish_s)
    return out


def inlet_samples(block: PilotBlock, start_s: int, days: float,
                  every_s: float = HOUR_S) -> list[tuple[float, dict[str, float]]]:  # fmt: skip
    """The inlet meter's readings (flow, pressure, totaliser) from start to end."""
    steps = int(days * 86_400 / every_s)
    return [(start_s + k * every_s, block.model.sample(start_s + k * every_s))
            for k in range(steps + 1)]  # fmt: skip
