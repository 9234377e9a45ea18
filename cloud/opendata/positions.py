"""Read what the open-data outputs publish from the time-series store and registry.

These are the only functions here that touch the store; the builders in
``gtfs_rt`` and ``geojson`` take the plain records they return.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cloud.opendata.gtfs_rt import VehicleFix
from cloud.store.base import SeriesPoint, TimeSeriesStore
from schemas.devices import DeviceKind
from schemas.wire import DeviceInfo


@dataclass(frozen=True)
class SnowplowFix:
    fix: VehicleFix
    plow_down: bool | None


@dataclass(frozen=True)
class TrackPoint:
    ts: datetime
    lat: float
    lon: float
    plow_down: bool


@dataclass(frozen=True)
class FloodStatus:
    device_id: str
    lat: float | None
    lon: float | None
    site: str | None
    area: str | None
    district: str | None
    depth_cm: float | None
    rain_mm_h: float | None
    observed_at: datetime | None
    stages_cm: tuple[float, float, float]


def _value(latest: Mapping[str, SeriesPoint], name: str) -> Any:
    p = latest.get(name)
    return None if p is None else p.value


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def latest_vehicles(
    store: TimeSeriesStore,
    devices: Mapping[str, DeviceInfo],
    vehicle_type: str,
    *,
    now: datetime,
    max_age: timedelta,
) -> list[SnowplowFix]:
    """Last fix of every vehicle of ``vehicle_type`` no older than ``max_age`` at ``now``."""
    out = []
    for dev, info in sorted(devices.items()):
        if info.kind != DeviceKind.VEHICLE:
            continue
        if info.vehicle_type is not None and info.vehicle_type != vehicle_type:
            continue
        latest = store.latest(dev)
        vt = _value(latest, "vehicle_type") or info.vehicle_type
        if vt != vehicle_type:
            continue
        lat, lon = latest.get("lat"), latest.get("lon")
        if lat is None or lon is None or _num(lat.value) is None or _num(lon.value) is None:
            continue
        if now - lat.ts > max_age or lat.ts > now + timedelta(minutes=5):
            continue
        route = _value(latest, "route_id")
        plow = _value(latest, "plow_down")
        out.append(
            SnowplowFix(
                VehicleFix(
                    vehicle_id=dev,
                    lat=float(lat.value),  # type: ignore[arg-type]
                    lon=float(lon.value),  # type: ignore[arg-type]
                    ts=lat.ts,
                    speed_kmh=_num(_value(latest, "speed")),
                    heading=_num(_value(latest, "heading")),
                    route_id=str(route) if route else None,
                ),
                bool(plow) if isinstance(plow, bool) else None,
            )
        )
    return out


def plow_tracks(
    store: TimeSeriesStore, device_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[TrackPoint]]:
    """Each plow's fixes in [start, end], with the blade state in force at each fix."""
    tracks: dict[str, list[TrackPoint]] = {}
    for dev in device_ids:
        lats = {p.ts: p.value for p in store.series(dev, "lat", start, end)}
        lons = {p.ts: p.value for p in store.series(dev, "lon", start, end)}
        blade = [(p.ts, p.value) for p in store.series(dev, "plow_down", start, end)]
        blade_ts = [t for t, _ in blade]
        points = []
        for ts in sorted(set(lats) & set(lons)):
            la, lo = _num(lats[ts]), _num(lons[ts])
            if la is None or lo is None:
                continue
            i = bisect.bisect_right(blade_ts, ts) - 1
            down = i >= 0 and blade[i][1] is True
            points.append(TrackPoint(ts, la, lo, down))
        tracks[dev] = points
    return tracks


def site_stages(
    site: Mapping[str, Any], default: tuple[float, float, float]
) -> tuple[float, float, float]:
    """Per-site 注意/警戒/危険 depths (cm), as the flood detector reads them."""
    from cloud.detect.flood import site_stages as detector_stages

    a, b, c = detector_stages(site, default)
    return (a, b, c)


def flood_statuses(
    store: TimeSeriesStore,
    devices: Mapping[str, DeviceInfo],
    *,
    sites: Mapping[str, Mapping[str, Any]],
    default_stages: tuple[float, float, float],
) -> list[FloodStatus]:
    out = []
    for dev, info in sorted(devices.items()):
        if info.kind != DeviceKind.FLOOD_SENSOR:
            continue
        latest = store.latest(dev)
        depth = latest.get("depth")
        out.append(
            FloodStatus(
                device_id=dev,
                lat=info.lat,
                lon=info.lon,
                site=info.site,
                area=info.area,
                district=info.district,
                depth_cm=_num(depth.value) if depth else None,
                rain_mm_h=_num(_value(latest, "rain_intensity")),
                observed_at=depth.ts if depth else None,
                stages_cm=site_stages(sites.get(dev, {}), default_stages),
            )
        )
    return out
