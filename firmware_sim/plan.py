"""The fleet of a run: which devices exist, where, with which model, behind which gateway.

``build_fleet`` draws everything from the scenario's ``numpy.random.Generator`` in a
fixed order, so a seed fixes the whole city. Scenarios then inject faults into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from firmware_sim import noise
from firmware_sim.geo import Polyline, distance_m, to_latlon, to_xy
from firmware_sim.models.base import DeviceModel
from firmware_sim.models.callunit import CallUnitModel
from firmware_sim.models.flood import DEFAULT_STAGES_CM, FloodSensorModel
from firmware_sim.models.pump import PumpStationModel
from firmware_sim.models.vehicle import VehicleModel
from firmware_sim.models.water import WaterBlockModel
from firmware_sim.parts import poll_s
from firmware_sim.sites import AKITA_STATION, DISTRICTS, Site, load_sites
from firmware_sim.weather import Weather
from schemas.devices import DeviceKind, VehicleType
from schemas.wire import DeviceInfo

SCALES: dict[str, dict[str, int]] = {
    "small": {"water": 3, "pump": 3, "flood": 4, "bus": 2, "plow": 2, "call": 6, "routes": 2},
    "city": {
        "water": 41,
        "pump": 200,
        "flood": 50,
        "bus": 300,
        "plow": 1000,
        "call": 2000,
        "routes": 20,
    },
}
GATEWAY_MAX_DEVICES = {"small": 10_000, "city": 200}


@dataclass
class SimDevice:
    info: DeviceInfo
    model: DeviceModel
    gateway: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.info.device_id

    @property
    def kind(self) -> DeviceKind:
        return self.info.kind


@dataclass
class FleetPlan:
    scale: str
    seed: int
    start: float
    end: float
    weather: Weather
    devices: list[SimDevice]
    routes: dict[str, list[tuple[float, float]]]

    def of_kind(self, kind: DeviceKind, vehicle_type: VehicleType | None = None) -> list[SimDevice]:
        return [
            d
            for d in self.devices
            if d.kind == kind and (vehicle_type is None or d.info.vehicle_type == vehicle_type)
        ]

    def by_id(self, device_id: str) -> SimDevice:
        for d in self.devices:
            if d.id == device_id:
                return d
        raise KeyError(device_id)

    def gateways(self) -> dict[str, list[SimDevice]]:
        out: dict[str, list[SimDevice]] = {}
        for d in self.devices:
            out.setdefault(d.gateway, []).append(d)
        return out


def _jitter(rng: np.random.Generator, site: Site, lo: float, hi: float) -> tuple[float, float]:
    r = float(rng.uniform(lo, hi))
    a = float(rng.uniform(0, 2 * math.pi))
    x, y = to_xy(site.lat, site.lon)
    lat, lon = to_latlon(x + r * math.cos(a), y + r * math.sin(a))
    return round(lat, 6), round(lon, 6)


def _pick(rng: np.random.Generator, sites: list[Site], n: int) -> list[Site]:
    """n sites, without replacement while possible."""
    idx: list[int] = []
    while len(idx) < n:
        perm = rng.permutation(len(sites)).tolist()
        idx.extend(perm[: n - len(idx)])
    return [sites[i] for i in idx]


def _info(
    device_id: str, kind: DeviceKind, site: Site, lat: float, lon: float, **extra: Any
) -> DeviceInfo:
    return DeviceInfo(
        device_id=device_id,
        kind=kind,
        site=site.name[:80],
        district=site.district,
        area=site.area,
        lat=lat,
        lon=lon,
        poll_interval_s=poll_s(kind),
        **extra,
    )


def _bus_routes(rng: np.random.Generator, sites: tuple[Site, ...], n: int) -> list[list[Site]]:
    """Radial routes from Akita Station through real sites, 2-10 km out."""
    routes: list[list[Site]] = []
    sx, sy = to_xy(*AKITA_STATION)
    polar = []
    for s in sites:
        x, y = to_xy(s.lat, s.lon)
        d = math.hypot(x - sx, y - sy)
        if 600 < d < 11_000:
            polar.append((math.atan2(y - sy, x - sx), d, s))
    k = 0
    while len(routes) < n:
        theta = 2 * math.pi * (k + float(rng.uniform(0, 1))) / max(n, 8)
        k += 1
        width = 0.25
        cand = [(d, s) for a, d, s in polar if abs(math.remainder(a - theta, 2 * math.pi)) < width]
        while len(cand) < 3 and width < math.pi:
            width *= 1.6
            cand = [
                (d, s) for a, d, s in polar if abs(math.remainder(a - theta, 2 * math.pi)) < width
            ]
        cand.sort(key=lambda c: c[0])
        step = max(1, len(cand) // 6)
        chosen = [s for _, s in cand[::step]][:7]
        if len(chosen) >= 2:
            routes.append(chosen)
    return routes


def _beat(rng: np.random.Generator, lat: float, lon: float) -> list[tuple[float, float]]:
    """A snowplow beat: a closed zig-zag over 4-6 parallel road segments."""
    x0, y0 = to_xy(lat, lon)
    a = float(rng.uniform(0, math.pi))
    length = float(rng.uniform(800, 1600))
    passes = int(rng.integers(4, 7))
    gap = float(rng.uniform(150, 300))
    ux, uy, vx, vy = math.cos(a), math.sin(a), -math.sin(a), math.cos(a)
    pts = [(x0, y0)]
    for i in range(passes):
        far = length if i % 2 == 0 else 0.0
        near = 0.0 if i % 2 == 0 else length
        pts.append((x0 + ux * far + vx * gap * i, y0 + uy * far + vy * gap * i))
        pts.append((x0 + ux * near + vx * gap * (i + 1), y0 + uy * near + vy * gap * (i + 1)))
    pts.append((x0, y0))
    return [tuple(round(c, 6) for c in to_latlon(x, y)) for x, y in pts]  # type: ignore[misc]


def build_fleet(
    scale: str, rng: np.random.Generator, weather: Weather, start: float, end: float, seed: int
) -> FleetPlan:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)} (got {scale!r})")
    n = SCALES[scale]
    sites = load_sites()
    all_sites = list(sites)
    if scale == "small":  # keep a small fleet together: central and northern Akita
        all_sites = [s for s in sites if s.district in ("chuo", "hokubu")]
    flood_sites = [s for s in all_sites if s.flood] or all_sites
    devices: list[SimDevice] = []

    for i, site in enumerate(_pick(rng, all_sites, n["water"]), 1):
        lat, lon = _jitter(rng, site, 50, 300)
        mean = float(rng.uniform(40, 250))
        drop_at_peak = float(rng.uniform(0.6, 1.1))
        wm = WaterBlockModel(
            device_id=f"wb-{i:03d}",
            key=noise.child_key(rng),
            t0=start,
            mean_flow=mean,
            p_static_bar=float(rng.uniform(4.8, 6.2)),
            k_headloss=drop_at_peak / (1.6 * mean) ** 1.852,
            totaliser0=float(rng.uniform(1e5, 5e6)),
        )
        info = _info(wm.device_id, DeviceKind.WATER_BLOCK, site, lat, lon)
        facts: dict[str, Any] = {
            "mean_flow_m3h": round(mean, 3),
            "p_static_mpa": round(wm.p_static_bar / 10, 4),
        }
        devices.append(SimDevice(info, wm, facts=facts))

    for i, site in enumerate(_pick(rng, all_sites, n["pump"]), 1):
        lat, lon = _jitter(rng, site, 50, 400)
        q = float(rng.uniform(0.009, 0.016))
        start_l = float(rng.uniform(1.1, 1.3))
        pm = PumpStationModel(
            device_id=f"ps-{i:03d}",
            key=noise.child_key(rng),
            weather=weather,
            t0=start,
            area_m2=float(rng.uniform(2.0, 3.2)),
            start_level=start_l,
            stop_level=float(rng.uniform(0.35, 0.45)),
            assist_level=start_l + 0.4,
            high_level=start_l + 0.8,
            pump_m3s=q,
            dwf_m3s=q * float(rng.uniform(0.22, 0.38)),
            rain_m3s_per_mmh=q * float(rng.uniform(0.015, 0.03)),
            rain_factor=float(rng.uniform(0.8, 1.2)),
            rated_a=(float(rng.uniform(7, 12)), float(rng.uniform(7, 12))),
            run_hours0=(float(rng.uniform(2e3, 2e4)), float(rng.uniform(2e3, 2e4))),
        )
        info = _info(pm.device_id, DeviceKind.MANHOLE_PUMP, site, lat, lon)
        facts = {
            "start_level_m": round(pm.start_level, 3),
            "stop_level_m": round(pm.stop_level, 3),
            "assist_level_m": round(pm.assist_level, 3),
            "high_level_m": round(pm.high_level, 3),
            "area_m2": round(pm.area_m2, 3),
            "pump_m3h": round(q * 3600, 2),
        }
        devices.append(SimDevice(info, pm, facts=facts))

    for i, site in enumerate(_pick(rng, flood_sites, n["flood"]), 1):
        lat, lon = _jitter(rng, site, 100, 500)
        fm = FloodSensorModel(
            device_id=f"fs-{i:03d}",
            key=noise.child_key(rng),
            weather=weather,
            t0=start,
            concentration=float(rng.uniform(6, 14)),
            drain_mmh=float(rng.uniform(25, 40)),
            rain_factor=float(rng.uniform(0.7, 1.25)),
            stages_cm=dict(DEFAULT_STAGES_CM),
        )
        info = _info(fm.device_id, DeviceKind.FLOOD_SENSOR, site, lat, lon)
        facts = {
            "stages_cm": fm.stages_cm,
            "drain_mmh": round(fm.drain_mmh, 2),
            "concentration": round(fm.concentration, 2),
        }
        devices.append(SimDevice(info, fm, facts=facts))

    routes: dict[str, list[tuple[float, float]]] = {}
    route_sites = _bus_routes(rng, sites, n["routes"])
    for r, stops in enumerate(route_sites, 1):
        routes[f"route-{r:02d}"] = [AKITA_STATION] + [(s.lat, s.lon) for s in stops]
    route_ids = list(routes)
    per_route: dict[str, int] = {}
    for i in range(1, n["bus"] + 1):
        per_route[route_ids[(i - 1) % len(route_ids)]] = (
            per_route.get(route_ids[(i - 1) % len(route_ids)], 0) + 1
        )
    seen: dict[str, int] = {}
    for i in range(1, n["bus"] + 1):
        rid = route_ids[(i - 1) % len(route_ids)]
        k = seen.get(rid, 0)
        seen[rid] = k + 1
        pts = routes[rid]
        path = Polyline(pts + pts[-2::-1])
        cruise = float(rng.uniform(22, 30)) / 3.6
        bm = VehicleModel(
            device_id=f"bus-{i:03d}",
            key=noise.child_key(rng),
            vehicle_type="bus",
            route_id=rid,
            path=path,
            cruise_ms=cruise,
        )
        assert bm._tt is not None
        bm.phase_s = bm._tt.period * k / per_route[rid]
        outer = route_sites[route_ids.index(rid)][-1]
        lat, lon = AKITA_STATION
        info = _info(
            bm.device_id, DeviceKind.VEHICLE, outer, lat, lon, vehicle_type=VehicleType.BUS
        )
        info = info.model_copy(update={"site": "秋田駅西口", "area": "中通"})
        devices.append(
            SimDevice(info, bm, facts={"route_id": rid, "cruise_kmh": round(cruise * 3.6, 1)})
        )

    for i, site in enumerate(_pick(rng, all_sites, n["plow"]), 1):
        lat, lon = _jitter(rng, site, 50, 500)
        rid = f"beat-{i:04d}"
        beat = _beat(rng, lat, lon)
        routes[rid] = beat
        vm = VehicleModel(
            device_id=f"plow-{i:04d}",
            key=noise.child_key(rng),
            vehicle_type="snowplow",
            route_id=rid,
            path=Polyline(beat),
        )
        info = _info(
            vm.device_id, DeviceKind.VEHICLE, site, lat, lon, vehicle_type=VehicleType.SNOWPLOW
        )
        devices.append(SimDevice(info, vm, facts={"route_id": rid, "depot": [lat, lon]}))

    for i, site in enumerate(_pick(rng, all_sites, n["call"]), 1):
        lat, lon = _jitter(rng, site, 100, 900)
        cm = CallUnitModel(
            device_id=f"cu-{i:04d}",
            key=noise.child_key(rng),
            weather=weather,
            t0=start,
            hb_interval_s=poll_s(DeviceKind.CALL_UNIT),
            # whole minutes: units share weather look-ups (a cache) at the same instants
            hb_phase_s=60.0 * int(rng.integers(0, int(poll_s(DeviceKind.CALL_UNIT) // 60))),
            has_ac=bool(rng.uniform() < 0.55),
            offset_c=float(rng.normal(0, 0.8)),
            battery0=float(rng.uniform(70, 100)),
        )
        info = _info(cm.device_id, DeviceKind.CALL_UNIT, site, lat, lon)
        devices.append(SimDevice(info, cm, facts={"has_ac": cm.has_ac}))

    _assign_gateways(devices, scale)
    for d in devices:
        d.facts["gateway"] = d.gateway
    return FleetPlan(scale, seed, start, end, weather, devices, routes)


def _assign_gateways(devices: list[SimDevice], scale: str) -> None:
    """One gateway per district, split into chunks of at most N devices."""
    limit = GATEWAY_MAX_DEVICES[scale]
    if scale == "small":
        for d in devices:
            d.gateway = "gw-small-01"
        return
    for district in DISTRICTS:
        members = [d for d in devices if d.info.district == district]
        chunks = max(1, math.ceil(len(members) / limit))
        for j, d in enumerate(members):
            d.gateway = f"gw-{district}-{j % chunks + 1:02d}"  # each gateway gets a mix


def nearest_route_distance(route: list[tuple[float, float]], lat: float, lon: float) -> float:
    return Polyline(route).distance_to(lat, lon)


__all__ = ["SCALES", "FleetPlan", "SimDevice", "build_fleet", "distance_m"]
