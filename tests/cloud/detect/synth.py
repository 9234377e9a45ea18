"""Small synthetic labelled exports in the contract-C format, for the detector tests.

Stand-ins for ``akita sim export`` output: deterministic, seconds to generate, and
covering every labelled kind with a known start time.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

T0 = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)  # 09:00 JST
ROUTE = [[39.70, 140.10], [39.72, 140.10], [39.74, 140.11]]


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(round(v, 6))
    return str(v)


class Builder:
    def __init__(self, scenario: str, start: datetime, end: datetime) -> None:
        self.scenario, self.start, self.end = scenario, start, end
        self.rows: list[tuple[str, str, str, str, str]] = []
        self.labels: list[dict[str, Any]] = []
        self.devices: list[dict[str, Any]] = []
        self.sites: dict[str, dict[str, Any]] = {}
        self.routes: dict[str, list[list[float]]] = {}

    def device(self, device_id: str, kind: str, poll: float, **site: Any) -> None:
        self.devices.append({"device_id": device_id, "kind": kind, "poll_interval_s": poll})
        if site:
            self.sites[device_id] = site

    def reading(self, t: datetime, dev: str, kind: str, values: dict[str, Any]) -> None:
        for f, v in values.items():
            if v is not None:
                self.rows.append((iso(t), dev, kind, f, fmt(v)))

    def label(
        self, kind: str, dev: str, start: datetime, end: datetime | None, **info: Any
    ) -> None:
        self.labels.append(
            {
                "kind": kind,
                "device_id": dev,
                "start": iso(start),
                "end": iso(end) if end else None,
                "info": info,
            }
        )

    def series(
        self, dev: str, kind: str, step_s: float, fn: Callable[[datetime], dict[str, Any] | None]
    ) -> None:
        t = self.start
        while t < self.end:
            vals = fn(t)
            if vals is not None:
                self.reading(t, dev, kind, vals)
            t += timedelta(seconds=step_s)

    def write(self, path: Path) -> Path:
        self.rows.sort(key=lambda r: (r[0], r[1], r[3]))
        lines = ["ts,device_id,kind,field,value"] + [",".join(r) for r in self.rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        stem = path.name.removesuffix(".csv")
        path.with_name(stem + ".labels.json").write_text(
            json.dumps(
                {
                    "scenario": self.scenario,
                    "seed": 1,
                    "start": iso(self.start),
                    "end": iso(self.end),
                    "labels": self.labels,
                }
            )
        )
        path.with_name(stem + ".devices.json").write_text(
            json.dumps({"devices": self.devices, "sites": self.sites, "routes": self.routes})
        )
        return path


def mixed(path: Path) -> Path:
    """8 hours: flood stages, pump faults, a bus, a call unit, an offline sensor."""
    b = Builder("mixed", T0, T0 + timedelta(hours=8))
    rnd = random.Random(7)
    m = lambda h: T0 + timedelta(hours=h)  # noqa: E731

    # flood f1: rises 0.5 cm/min from 1 h to 35 cm, dithers ±0.8 cm, drains after 5 h
    b.device("f1", "flood_sensor", 60)

    def f1(t: datetime) -> dict[str, Any]:
        h = (t - T0).total_seconds() / 3600
        d = 0.0 if h < 1 else min(35.0, (h - 1) * 30)
        if h > 5:
            d = max(0.0, 35 - (h - 5) * 30)
        if 2.5 < h < 4.5:
            d = 20.0 + rnd.uniform(-0.8, 0.8) if h < 3.5 else d
        return {"depth": round(d, 2), "rain_intensity": 10.0}

    b.series("f1", "flood_sensor", 60, f1)
    # first samples at or above 10, 20, 30 cm while rising (0.5 cm/min from 01:00)
    b.label("flood_stage", "f1", m(1) + timedelta(minutes=20), m(5.8), stage="caution")
    b.label("flood_stage", "f1", m(1) + timedelta(minutes=40), m(5.5), stage="warning")
    b.label("flood_stage", "f1", m(3.5) + timedelta(minutes=0), m(5.2), stage="danger")
    # f2 has its own stage depths (5 / 15 / 25 cm) and peaks at 16 cm
    b.device("f2", "flood_sensor", 60, stages_cm=[5, 15, 25])
    b.series("f2", "flood_sensor", 60, lambda t: {"depth": 16.0 if m(2) <= t < m(3) else 1.0})
    b.label("flood_stage", "f2", m(2), m(3), stage="caution")
    b.label("flood_stage", "f2", m(2), m(3), stage="warning")
    # f3 goes silent for 20 minutes, then its gateway gw9 loses its backhaul for 20 more
    b.device("f3", "flood_sensor", 60, gateway="gw9")

    def f3(t: datetime) -> dict[str, Any] | None:
        silent = m(5) <= t < m(5.33) or m(6.5) <= t < m(6.83)
        return None if silent else {"depth": 0.0}

    b.series("f3", "flood_sensor", 60, f3)
    b.label("device_offline", "f3", m(5), m(5.33))
    b.label("gateway_offline", "gw9", m(6.5), m(6.83), devices=1)

    # pump p1: a normal fill/empty cycle; from 4 h the pumps fail to start; 6 h short cycling
    b.device("p1", "manhole_pump", 30, start_level_m=1.2, high_level_m=2.0)
    st: dict[str, Any] = {"level": 0.4, "run": False, "hours": 100.0, "hours2": 100.0, "n": 0}

    def p1(t: datetime) -> dict[str, Any]:
        h = (t - T0).total_seconds() / 3600
        failing = 4 <= h < 4.5
        cycling = 6 <= h < 6.5
        st["n"] += 1
        if cycling:
            st["run"] = st["n"] % 2 == 0
            st["level"] = 1.15
        elif st["run"]:
            st["level"] -= 0.05
            if st["level"] <= 0.4:
                st["run"] = False
        else:
            st["level"] += 0.02
            if st["level"] >= 1.2 and not failing:
                st["run"] = True
        if failing:
            st["level"] = min(st["level"], 1.9)
        if st["run"]:
            st["hours"] += 30 / 3600
            st["hours2"] += 30 / 3600
        return {
            "level": round(st["level"], 3),
            "pump1_running": st["run"],
            "pump2_running": False,
            "pump1_current": 9.0 if st["run"] else 0.0,
            "pump2_current": 0.0,
            "pump1_run_hours": round(st["hours"], 4),
            "pump2_run_hours": round(st["hours2"], 4),
            "fault_code": 11 if failing and st["level"] >= 1.2 else 0,
        }

    b.series("p1", "manhole_pump", 30, p1)
    b.label("pump_fail_to_start", "p1", m(4), m(4.5))
    b.label("pump_short_cycle", "p1", m(6), m(6.5))

    # bus v1 drives along ROUTE at ~30 km/h; GPS drops out at 2 h, leaves the route at 3 h
    b.device("v1", "vehicle", 10)
    b.routes["R1"] = ROUTE

    def v1(t: datetime) -> dict[str, Any]:
        h = (t - T0).total_seconds() / 3600
        if 2 <= h < 2 + 10 / 60:
            return {"fix": False, "route_id": "R1"}
        frac = (h % 1.0) * 0.9
        lat = 39.70 + 0.02 * frac / 0.5 if frac < 0.5 else 39.72 + 0.02 * (frac - 0.5) / 0.4
        lon = 140.10 if frac < 0.5 else 140.10 + 0.01 * (frac - 0.5) / 0.4
        if 3 <= h < 3 + 5 / 60:
            lon += 0.006  # about 500 m east
        return {"lat": lat, "lon": lon, "speed": 30.0, "fix": True, "route_id": "R1"}

    b.series("v1", "vehicle", 10, v1)
    b.label("gps_dropout", "v1", m(2), m(2 + 10 / 60))
    b.label("off_route", "v1", m(3), m(3 + 5 / 60))

    # call unit c1: heartbeat every 10 min; button at 1.5 h; room heats from 5 h
    b.device("c1", "call_unit", 600)

    def room(t: datetime) -> float:
        h = (t - T0).total_seconds() / 3600
        return 26.0 if h < 5 else min(34.0, 26.0 + (h - 5) * 4)

    b.series(
        "c1",
        "call_unit",
        600,
        lambda t: {
            "event": "heartbeat",
            "temperature": round(room(t), 1),
            "humidity": 60.0,
            "battery": 90.0,
        },
    )
    b.reading(
        m(1.5) + timedelta(seconds=7),
        "c1",
        "call_unit",
        {"event": "button", "temperature": 26.0, "humidity": 60.0},
    )
    b.label("button_press", "c1", m(1.5) + timedelta(seconds=7), m(1.6))

    def wbgt(t: float, rh: float) -> float:
        return 0.725 * t + 0.0368 * rh + 0.00364 * t * rh - 3.246

    for stage, limit in (("severe_warning", 28.0), ("danger", 31.0)):
        t = T0
        while t < b.end and wbgt(room(t), 60.0) < limit:
            t += timedelta(seconds=600)
        if t < b.end:
            b.label("heat_wbgt", "c1", t, None, stage=stage)
    b.label("heavy_rain", "f1", m(0.5), m(5), context=True)
    return b.write(path)


def water(path: Path, *, days: int = 12, leak_day: int = 9, leak_flow: float = 8.0) -> Path:
    """Two blocks at 5-minute samples: w1 springs a leak; w2 bursts and its sensor sticks."""
    start = T0 - timedelta(hours=9)  # local midnight
    b = Builder("water", start, start + timedelta(days=days))
    rnd = random.Random(11)
    leak_at = start + timedelta(days=leak_day, hours=12)
    burst_at = start + timedelta(days=days - 1, hours=2, minutes=2)
    stuck_at = start + timedelta(days=days - 2, hours=5)

    def demand(t: datetime, mean: float) -> float:
        lh = ((t - start).total_seconds() / 3600) % 24
        shape = (
            1 + 0.6 * math.sin((lh - 9) / 24 * 2 * math.pi) - 0.25 * math.cos(lh / 12 * 2 * math.pi)
        )
        return max(0.35, shape) * mean * (1 + rnd.gauss(0, 0.02))

    def w1(t: datetime) -> dict[str, Any]:
        q = demand(t, 100) + (leak_flow if t >= leak_at else 0.0)
        return {"flow": round(q, 3), "pressure": round(0.55 - 2e-5 * q**1.852 / 10, 4)}

    def w2(t: datetime) -> dict[str, Any]:
        q = demand(t, 80) + (150.0 if burst_at <= t < burst_at + timedelta(hours=2) else 0.0)
        p = round(0.55 - 1e-4 * q**1.852 / 10 + rnd.gauss(0, 0.002), 4)
        if stuck_at <= t < stuck_at + timedelta(hours=3):
            p = 0.5123
        return {"flow": round(q, 3), "pressure": p}

    for dev, fn in (("w1", w1), ("w2", w2)):
        b.device(dev, "water_block", 300)
        b.series(dev, "water_block", 300, fn)
    b.label("leak", "w1", leak_at, None)
    b.label("burst", "w2", burst_at, burst_at + timedelta(hours=2))
    b.label("stuck_sensor", "w2", stuck_at, stuck_at + timedelta(hours=3))
    return b.write(path)
