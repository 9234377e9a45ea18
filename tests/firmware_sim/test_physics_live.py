"""The physics, read live through the edge drivers on an accelerated clock.

A day of a water block in ~9 s (speed 10 000, the clock's limit), pump stations over the
same day, and a storm over the flood sensors (speed 1 200), all through real Modbus TCP
and RTU on a pty.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from edge.config import load_config
from edge.drivers import PollDriver, create
from edge.errors import DeviceError
from firmware_sim.fleet import start_fleet


async def _sample(
    workdir: Path, scenario: str, kinds: set[str], speed: float, real_s: float, every: float
) -> tuple[dict[str, list[tuple[float, dict[str, Any]]]], Any]:
    fleet = await start_fleet(scenario, speed=speed, workdir=workdir, calendar="scenario")
    try:
        (path,) = fleet.edge_configs
        cfg = load_config(path)
        drivers: dict[str, PollDriver] = {}
        for d in cfg.devices:
            if d.kind.value in kinds:
                drv = create(d, cfg)
                assert isinstance(drv, PollDriver)
                await drv.open()
                drivers[d.id] = drv
        out: dict[str, list[tuple[float, dict[str, Any]]]] = {k: [] for k in drivers}
        deadline = time.monotonic() + real_s
        while time.monotonic() < deadline:
            for dev_id, drv in drivers.items():
                with contextlib.suppress(DeviceError):  # a slow moment: the next poll will do
                    out[dev_id].append((fleet.clock.now_ts(), await drv.read()))
            await asyncio.sleep(every)
        for drv in drivers.values():
            await drv.close()
        return out, fleet
    finally:
        await fleet.stop()


def test_water_night_minimum_and_pumps_between_set_points(tmp_path: Path) -> None:
    series, fleet = asyncio.run(
        _sample(tmp_path, "normal_week", {"water_block", "manhole_pump"}, 10_000.0, 9.0, 0.02)
    )
    start = fleet.run.plan.start
    sites = {d.id: d.facts for d in fleet.run.plan.devices}
    for dev, rows in series.items():
        assert len(rows) > 30, dev
        assert rows[-1][0] - rows[0][0] > 86_400 * 0.95  # a whole day went by
        if dev.startswith("wb"):
            flows = [v["flow"] for _, v in rows]
            night = [v["flow"] for t, v in rows if 2 * 3600 <= t - start < 4 * 3600]
            assert night and min(night) < sum(flows) / len(flows), dev
            totals = [v["totaliser"] for _, v in rows]
            assert totals == sorted(totals) and totals[-1] > totals[0]
        else:
            f = sites[dev]
            levels = [v["level"] for _, v in rows]
            assert min(levels) >= f["stop_level_m"] - 0.05, dev
            assert max(levels) <= f["start_level_m"] + 0.05, dev
            # duty alternation: both pumps ran during the day
            h1 = [v["pump1_run_hours"] for _, v in rows]
            h2 = [v["pump2_run_hours"] for _, v in rows]
            assert h1[-1] > h1[0] and h2[-1] > h2[0]
            assert abs((h1[-1] - h1[0]) - (h2[-1] - h2[0])) < 0.5 * (h1[-1] - h1[0])


def test_flood_depth_rises_with_rain(tmp_path: Path) -> None:
    series, fleet = asyncio.run(_sample(tmp_path, "demo", {"flood_sensor"}, 1_200.0, 5.0, 0.05))
    sites = {d.id: d.facts for d in fleet.run.plan.devices}
    for dev, rows in series.items():
        depth = [v["depth"] for _, v in rows]
        rain = [v["rain_intensity"] for _, v in rows]
        assert depth[0] == 0.0 and max(rain) > 60
        assert max(depth) >= 10.0, dev  # the demo storm floods every underpass
        first_wet = next(i for i, d in enumerate(depth) if d > 0)
        assert rain[first_wet] > 0.7 * sites[dev]["drain_mmh"]  # only rain above the drain
        assert max(range(len(depth)), key=depth.__getitem__) > max(
            range(len(rain)), key=rain.__getitem__
        )  # the peak depth lags the peak rain
