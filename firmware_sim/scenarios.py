"""Seeded scenarios: a city, its weather and the faults injected into it, with labels.

``build(name, seed=, scale=, days=)`` returns a :class:`Run`: the fleet plan (models with
faults set) and the ground-truth labels. Everything is drawn from one
``numpy.random.Generator(PCG64(seed))`` in a fixed order, so a seed fixes the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from firmware_sim.geo import Polyline
from firmware_sim.labels import Label, flood_labels, heat_labels
from firmware_sim.models.base import Window
from firmware_sim.models.callunit import CallUnitModel, Press
from firmware_sim.models.flood import FloodSensorModel
from firmware_sim.models.pump import PumpStationModel
from firmware_sim.models.vehicle import Detour, VehicleModel
from firmware_sim.models.water import Burst, Leak, WaterBlockModel
from firmware_sim.plan import FleetPlan, build_fleet
from firmware_sim.timebase import HOUR_S, jst_midnight
from firmware_sim.weather import HeatWave, Pulse, Weather
from schemas.devices import DeviceKind, VehicleType

DAY = 86_400.0
CITY = "city"  # device_id of city-wide context labels


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    date: tuple[int, int, int]
    days: float
    weather: Callable[[np.random.Generator, float, int, int], Weather]
    inject: Callable[[FleetPlan, np.random.Generator], list[Label]]


@dataclass
class Run:
    scenario: Scenario
    plan: FleetPlan
    labels: list[Label]

    def labels_json(self) -> dict[str, object]:
        from firmware_sim.timebase import iso_ms

        return {
            "scenario": self.scenario.name,
            "seed": self.plan.seed,
            "start": iso_ms(self.plan.start),
            "end": iso_ms(self.plan.end),
            "labels": [x.to_json() for x in self.labels],
        }


# --- weather ------------------------------------------------------------------------------


def _showers(rng: np.random.Generator, start: float, days: int, month: int) -> Weather:
    """Ordinary weather: a few light showers that no drain notices."""
    w = Weather(month=month, key=int(rng.integers(0, 1 << 62)))
    for _ in range(int(rng.integers(1, 3 + days // 3))):
        at = start + float(rng.uniform(0, max(days, 1) * DAY - 6 * HOUR_S))
        w.storms.append(Pulse(at, float(rng.uniform(1.5, 5)) * HOUR_S, float(rng.uniform(3, 12))))
    return w


def _storm(rng: np.random.Generator, start: float, days: int, month: int) -> Weather:
    w = Weather(month=month, key=int(rng.integers(0, 1 << 62)))
    at = start + float(rng.uniform(3, 5)) * HOUR_S
    w.storms.append(Pulse(at, 4 * HOUR_S, float(rng.uniform(90, 105))))
    return w


def _demo_weather(rng: np.random.Generator, start: float, days: int, month: int) -> Weather:
    w = Weather(month=month, key=int(rng.integers(0, 1 << 62)))
    w.storms.append(Pulse(start + 180.0, 100 * 60.0, 115.0))
    return w


def _snow(rng: np.random.Generator, start: float, days: int, month: int) -> Weather:
    w = Weather(month=month, key=int(rng.integers(0, 1 << 62)))
    at = start + float(rng.uniform(16, 19)) * HOUR_S
    w.snowfalls.append(Pulse(at, float(rng.uniform(12, 16)) * HOUR_S, float(rng.uniform(3.0, 4.0))))
    return w


def _heat(rng: np.random.Generator, start: float, days: int, month: int) -> Weather:
    w = _showers(rng, start, 0, month)
    w.storms.clear()
    w.heat_waves.append(
        HeatWave(start + 6 * HOUR_S, min(days, 4.5) * DAY, float(rng.uniform(8.5, 10)))
    )
    return w


# --- injections ---------------------------------------------------------------------------


def _count(plan: FleetPlan, small: int, city: int) -> int:
    return small if plan.scale == "small" else city


def _choose(rng: np.random.Generator, items: list, k: int) -> list:  # type: ignore[type-arg]
    idx = sorted(rng.choice(len(items), size=min(k, len(items)), replace=False).tolist())
    return [items[i] for i in idx]


def _day_time(
    plan: FleetPlan, rng: np.random.Generator, day: float, lo_h: float, hi_h: float
) -> float:
    return plan.start + day * DAY + float(rng.uniform(lo_h, hi_h)) * HOUR_S


def _none(plan: FleetPlan, rng: np.random.Generator) -> list[Label]:
    return []


def _leak(plan: FleetPlan, rng: np.random.Generator) -> list[Label]:
    out = []
    for dev in _choose(rng, plan.of_kind(DeviceKind.WATER_BLOCK), _count(plan, 1, 3)):
        m: WaterBlockModel = dev.model
        at = _day_time(plan, rng, 1, 10, 16)
        flow = m.mean_flow * float(rng.uniform(0.12, 0.2))
        m.leaks.append(Leak(at, flow))
        out.append(Label("leak", dev.id, at, None, {"flow_m3h": round(flow, 3)}))
    return out


def _burst(plan: FleetPlan, rng: np.random.Generator) -> list[Label]:
    out = []
    for dev in _choose(rng, plan.of_kind(DeviceKind.WATER_BLOCK), _count(plan, 1, 2)):
        m: WaterBlockModel = dev.model
        at = _day_time(plan, rng, 1, 10, 15)
        end = at + float(rng.uniform(2, 4)) * HOUR_S
        flow = m.mean_flow * float(rng.uniform(1.2, 1.8))
        m.bursts.append(Burst(at, end, flow))
        out.append(Label("burst", dev.id, at, end, {"flow_m3h": round(flow, 3)}))
    return out


def _stuck(plan: FleetPlan, rng: np.random.Generator) -> list[Label]:
    out = []
    for dev in _choose(rng, plan.of_kind(DeviceKind.WATER_BLOCK), _count(plan, 1, 2)):
        m: WaterBlockModel = dev.model
        at = _day_time(plan, rng, 0, 8, 16)
        m.stuck = Window(at)
        out.append(Label("stuck_sensor", dev.id, at, None, {"field": "pressure"}))
    return out


def _pump_fail(plan: FleetPlan, rng: np.random.Generator) -> list[Label]:
    out = []
    for dev in _choose(rng, plan.of_kind(DeviceKind.MANHOLE_PUMP), _count(plan, 1, 3)):
        m: PumpStationModel = dev.model
        at = _day_time(plan, rng, 0, 4, 8)
        m.fail_to_start.append((Window(at), (0, 1)))
        # the fault shows at the next start attempt: find it
        m.reset()
        first = None
        t = at
        while t < plan.end:
            t += 5.0
            st = m.state(t)
            if st.fault[0] or st.fault[1]:
                first = st.t - 5.0
                break
        m.reset()
        out.append(
            Label(
                "pump_fail_to_start",
                dev.id,
                first if first is not None else at,
                None,
                {"pumps": [1, 2], "injected": at},
            )
        )
    return out


def _short_cycle(plan: FleetPlan, rng: np.random.Generator) -> list[Label]:
    out = []
    for dev in _choose(rng, plan.of_kind(DeviceKind.MANHOLE_PUMP), _count(plan, 1, 3)):
        m: PumpStationModel = dev.model
        at = _day_time(plan, rng, 0, 8, 11)
        m.short_cycle = Window(at)
        out.append(Label("pump_short_cycle", dev.id, at, None, {"cause": "stop float stuck high"}))
    return out


def _heavy_rain(plan: FleetPlan, rng: np.random.Generator) -> list[Label]:
    s = plan.weather.storms[0]
    return [
        Label(
            "heavy_rain",
            CITY,
            s.start,
            s.start + s.duration,
            {"context": True, "peak_mmh": round(s.peak, 1)},
        )
    ]


def _gps(plan: FleetPlan, rng: np.random.Generator) -> list[Label]:
    out = []
    buses = plan.of_kind(DeviceKind.VEHICLE, VehicleType.BUS)
    k = _count(plan, 1, 3)
    chosen = _choose(rng, buses, 2 * k)
    for dev in chosen[:k]:
        m: VehicleModel = dev.model
        at = _day_time(plan, rng, 0, 8, 11)
        end = at + float(rng.uniform(15, 30)) * 60
        m.dropouts.append(Window(at, end))
        out.append(Label("gps_dropout", dev.id, at, end, {}))
    for dev in chosen[k:]:
        m = dev.model
        route = Polyline(plan.routes[m.route_id])
        for _ in range(60):  # a detour whose parallel road does not touch the route elsewhere
            at = _day_time(plan, rng, 0, 13, 16)
            end = at + float(rng.uniform(20, 30)) * 60
            detour = Detour(Window(at, end), offset_m=float(rng.uniform(500, 800)))
            m.detours = [detour]
            probe = [
                at + detour.ramp_s + i * 30.0
                for i in range(int((end - at - 2 * detour.ramp_s) / 30))
            ]
            if all(route.distance_to(*m.true_position(t)[:2]) > 300 for t in probe):
                break
        out.append(Label("off_route", dev.id, at, end, {"route_id": m.route_id}))
    return out


DISPATCH_CM = 10.0


def _snowplows(plan: FleetPlan, rng: np.random.Generator) -> list[Label]:
    w = plan.weather
    out = []
    for sf in w.snowfalls:
        out.append(
            Label(
                "snowfall",
                CITY,
                sf.start,
                sf.start + sf.duration,
                {"context": True, "total_cm": round(sf.integral(sf.start + sf.duration), 1)},
            )
        )
    # dispatch when 10 cm has fallen since the last clearance (scan on a 10-min grid)
    dispatches: list[float] = []
    cleared = 0.0
    t = plan.start
    while t < plan.end:
        total = w.snow_total(t)
        if total - cleared >= DISPATCH_CM:
            dispatches.append(t)
            cleared = total
        t += 600.0
    for dev in plan.of_kind(DeviceKind.VEHICLE, VehicleType.SNOWPLOW):
        m = dev.model
        assert isinstance(m, VehicleModel)
        for d in dispatches:
            begin = d + float(rng.uniform(0, 40)) * 60
            length = m.path.length if m.path else 5000.0
            work = max(3 * HOUR_S, 2 * length / (15 / 3.6))
            m.dispatch.append(Window(begin, begin + work))
    return out


def _buttons(plan: FleetPlan, rng: np.random.Generator) -> list[Label]:
    out = []
    for dev in _choose(rng, plan.of_kind(DeviceKind.CALL_UNIT), _count(plan, 3, 20)):
        m: CallUnitModel = dev.model
        at = _day_time(plan, rng, 0, 7, 21)
        cancel = at + float(rng.uniform(60, 240)) if rng.uniform() < 0.5 else None
        m.presses.append(Press(at, cancel))
        out.append(Label("button_press", dev.id, at, cancel, {"cancelled": cancel is not None}))
    return out


def _heat_context(plan: FleetPlan, rng: np.random.Generator) -> list[Label]:
    hw = plan.weather.heat_waves[0]
    return [
        Label(
            "heat_wave",
            CITY,
            hw.start,
            hw.start + hw.duration,
            {"context": True, "extra_c": round(hw.extra_c, 1)},
        )
    ]


def _offline(plan: FleetPlan, rng: np.random.Generator) -> list[Label]:
    out = []
    picks = [
        (DeviceKind.MANHOLE_PUMP, 6, 9),
        (DeviceKind.CALL_UNIT, 10, 16),
        (DeviceKind.VEHICLE, 12, 13),
    ]
    for kind, a, b in picks:
        dev = _choose(rng, plan.of_kind(kind), 1)[0]
        w = Window(plan.start + a * HOUR_S, plan.start + b * HOUR_S)
        dev.model.outages.append(w)
        out.append(
            Label("device_offline", dev.id, w.start, w.end, {"reason": "power lost at site"})
        )
    gateways = sorted(plan.gateways())
    gw = gateways[int(rng.integers(0, len(gateways)))]
    w = Window(plan.start + 15 * HOUR_S, plan.start + 16 * HOUR_S)
    members = plan.gateways()[gw]
    for dev in members:
        dev.model.outages.append(w)
    out.append(
        Label(
            "gateway_offline",
            gw,
            w.start,
            w.end,
            {"devices": len(members), "reason": "backhaul down"},
        )
    )
    return out


def _demo(plan: FleetPlan, rng: np.random.Generator) -> list[Label]:
    # first flood sensor sits in the storm's core so a stage is crossed early
    fs = plan.of_kind(DeviceKind.FLOOD_SENSOR)[0].model
    assert isinstance(fs, FloodSensorModel)
    fs.rain_factor, fs.drain_mmh, fs.concentration = 1.15, 25.0, 14.0
    dev = plan.of_kind(DeviceKind.CALL_UNIT)[0]
    at = plan.start + 12 * 60.0
    cu = dev.model
    assert isinstance(cu, CallUnitModel)
    cu.presses.append(Press(at, None))
    s = plan.weather.storms[0]
    return [
        Label("button_press", dev.id, at, None, {"cancelled": False}),
        Label(
            "heavy_rain", CITY, s.start, s.start + s.duration, {"context": True, "peak_mmh": s.peak}
        ),
    ]


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            "normal_week",
            "A fault-free June week (Mon-Sun): demand cycles, a few showers.",
            (2026, 6, 1),
            7,
            _showers,
            _none,
        ),
        Scenario(
            "water_leak",
            "A block's night flow rises and stays up from day 2 (new leak).",
            (2026, 6, 1),
            4,
            _showers,
            _leak,
        ),
        Scenario(
            "pipe_burst",
            "A main bursts on day 2: flow spike with a pressure drop, isolated hours later.",
            (2026, 6, 1),
            2,
            _showers,
            _burst,
        ),
        Scenario(
            "stuck_pressure",
            "A pressure transmitter flat-lines (returns one constant value).",
            (2026, 6, 1),
            2,
            _showers,
            _stuck,
        ),
        Scenario(
            "pump_fail_to_start",
            "Both pumps of a station fail to start: fault bits, wet well rises to alarm.",
            (2026, 6, 2),
            1,
            _showers,
            _pump_fail,
        ),
        Scenario(
            "pump_short_cycle",
            "A stuck stop float makes the pumps start and stop every minute.",
            (2026, 6, 2),
            1,
            _showers,
            _short_cycle,
        ),
        Scenario(
            "heavy_rain_flood",
            "A 90-105 mm/h storm: underpasses cross 注意/警戒/危険 (10/20/30 cm).",
            (2026, 7, 10),
            1,
            _storm,
            _heavy_rain,
        ),
        Scenario(
            "bus_gps_dropout_off_route",
            "One bus loses its GPS fix for 15-30 min; another leaves its route.",
            (2026, 6, 2),
            1,
            _showers,
            _gps,
        ),
        Scenario(
            "snowfall_snowplows",
            "A January night snowfall of 20-30 cm: the snowplow fleet sweeps its beats.",
            (2026, 1, 15),
            2,
            _snow,
            _snowplows,
        ),
        Scenario(
            "call_button_press",
            "Residents press the emergency button; about half cancel within minutes.",
            (2026, 6, 2),
            1,
            _showers,
            _buttons,
        ),
        Scenario(
            "heat_wave",
            "An August heat wave: rooms without air conditioning pass WBGT 28 and 31 °C.",
            (2026, 8, 3),
            5,
            _heat,
            _heat_context,
        ),
        Scenario(
            "device_offline",
            "A pump station, a call unit and a bus go offline; later a whole gateway's field link.",
            (2026, 6, 2),
            1,
            _showers,
            _offline,
        ),
        Scenario(
            "demo",
            "Small and fast: at --speed 60 a flood stage is crossed and a button pressed "
            "within the first simulated hour.",
            (2026, 6, 2),
            1,
            _demo_weather,
            _demo,
        ),
    ]
}


def days_to_recent(name: str, now: float) -> int:
    """Whole days that move a scenario's start to the latest 00:00 JST at or before now."""
    return int((now - jst_midnight(*SCENARIOS[name].date)) // DAY)


def build(
    name: str,
    *,
    seed: int = 1,
    scale: str = "small",
    days: float | None = None,
    shift_days: int = 0,
) -> Run:
    """Build a scenario run: the fleet, its faults and the ground-truth labels.

    ``shift_days`` moves the whole run by whole days (same JST time of day; the season
    stays the scenario's, the weekday follows the new date), so a live run can carry
    recent timestamps.
    """
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    sc = SCENARIOS[name]
    span = sc.days if days is None else days
    if span <= 0:
        raise ValueError(f"days must be > 0 (got {span})")
    rng = np.random.default_rng(seed)
    start = jst_midnight(*sc.date) + shift_days * DAY
    end = start + span * DAY
    weather = sc.weather(rng, start, int(np.ceil(span)), sc.date[1])
    plan = build_fleet(scale, rng, weather, start, end, seed)
    labels = sc.inject(plan, rng)
    labels += flood_labels(plan)
    labels += heat_labels(plan)
    labels = [x for x in labels if x.start < end]
    labels.sort(key=lambda x: (x.start, x.device_id, x.kind))
    return Run(sc, plan, labels)
