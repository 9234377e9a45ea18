"""GeoJSON and CSV builders: snowplows, cleared segments, FloodMonitoring status.

Pure functions over the records of :mod:`cloud.opendata.positions`. Every
FeatureCollection carries the licence block (``licence``, ``attribution``, ...) as a
foreign member, which GeoJSON (RFC 7946 §6.1) allows.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from cloud.opendata.gtfs_static import haversine_m
from cloud.opendata.licence import PUBLISHER, licence_meta
from cloud.opendata.positions import FloodStatus, SnowplowFix, TrackPoint

# FloodMonitoring.floodLevelStatus per stage (the model leaves the vocabulary open; it
# names "Normal" and "Danger"); Japanese stage names follow the road flood stages.
STAGE_STATUS = ("Normal", "Caution", "Warning", "Danger")
STAGE_JA = ("平常", "注意", "警戒", "危険")
FLOOD_CSV_COLUMNS = (
    "id",
    "type",
    "stationID",
    "name",
    "address",
    "latitude",
    "longitude",
    "observationDateTime",
    "currentLevel",
    "alertLevel",
    "warningLevel",
    "dangerLevel",
    "floodLevelStatus",
    "floodLevelStatusJa",
    "precipitation",
    "dataProvider",
    "license",
)


def iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat().replace("+00:00", "Z")


def collection(features: list[dict[str, Any]], *, generated: datetime, name: str) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "name": name,
        "generated": iso(generated),
        **licence_meta(),
        "features": features,
    }


def snowplows(fixes: Sequence[SnowplowFix], *, now: datetime) -> dict[str, Any]:
    features = []
    for s in fixes:
        f = s.fix
        features.append(
            {
                "type": "Feature",
                "id": f.vehicle_id,
                "geometry": {"type": "Point", "coordinates": [f.lon, f.lat]},
                "properties": {
                    "vehicle_id": f.vehicle_id,
                    "vehicleType": "lorry",
                    "serviceProvided": ["winterMaintenance"],
                    "plow_down": s.plow_down,
                    "speed_kmh": f.speed_kmh,
                    "heading": f.heading,
                    "observed_at": iso(f.ts),
                },
            }
        )
    return collection(features, generated=now, name="akita_snowplows")


def cleared_segments(
    tracks: Mapping[str, Sequence[TrackPoint]],
    *,
    now: datetime,
    max_gap: timedelta = timedelta(seconds=60),
    max_jump_m: float = 300.0,
) -> dict[str, Any]:
    """Runs of consecutive blade-down fixes as LineStrings, one feature per run.

    A run breaks where the blade lifts, where fixes are more than ``max_gap`` apart
    (no fix: the path between is unknown) or jump more than ``max_jump_m``.
    """
    features = []
    for dev in sorted(tracks):
        run: list[TrackPoint] = []

        def flush(run: list[TrackPoint], dev: str = dev) -> None:
            if len(run) < 2:
                return
            length = sum(
                haversine_m(a.lat, a.lon, b.lat, b.lon) for a, b in itertools.pairwise(run)
            )
            features.append(
                {
                    "type": "Feature",
                    "id": f"{dev}-{int(run[0].ts.timestamp())}",
                    "geometry": {
                        "type": "LineString",
                        "coordinates": [[p.lon, p.lat] for p in run],
                    },
                    "properties": {
                        "vehicle_id": dev,
                        "cleared_from": iso(run[0].ts),
                        "cleared_to": iso(run[-1].ts),
                        "length_m": round(length, 1),
                    },
                }
            )

        for p in tracks[dev]:
            if run and (
                not p.plow_down
                or p.ts - run[-1].ts > max_gap
                or haversine_m(run[-1].lat, run[-1].lon, p.lat, p.lon) > max_jump_m
            ):
                flush(run)
                run = []
            if p.plow_down:
                run.append(p)
        flush(run)
    return collection(features, generated=now, name="akita_snowplow_cleared_segments")


def stage_index(depth: float | None, stages: tuple[float, float, float]) -> int | None:
    if depth is None:
        return None
    return sum(1 for s in stages if depth >= s)


def flood_entity(s: FloodStatus) -> dict[str, Any]:
    """One FloodMonitoring entity (key-values), levels in cm.

    ``alertLevel``/``dangerLevel`` are the model's; ``warningLevel`` (警戒, between the
    two) and ``precipitation`` (mm/h, from the sensor's rain gauge, named as in
    WeatherObserved) are extensions.
    """
    idx = stage_index(s.depth_cm, s.stages_cm)
    return {
        "id": f"urn:ngsi-ld:FloodMonitoring:akita:{s.device_id}",
        "type": "FloodMonitoring",
        "stationID": s.device_id,
        "name": s.site or s.device_id,
        "address": {
            "addressCountry": "JP",
            "addressRegion": "秋田県",
            "addressLocality": "秋田市",
            **({"streetAddress": s.area} if s.area else {}),
            **({"district": s.district} if s.district else {}),
        },
        "observationDateTime": iso(s.observed_at),
        "currentLevel": s.depth_cm,
        "alertLevel": s.stages_cm[0],
        "warningLevel": s.stages_cm[1],
        "dangerLevel": s.stages_cm[2],
        "floodLevelStatus": STAGE_STATUS[idx] if idx is not None else "Unknown",
        "floodLevelStatusJa": STAGE_JA[idx] if idx is not None else "不明",
        "precipitation": s.rain_mm_h,
        "dataProvider": PUBLISHER,
    }


def flood_monitoring(statuses: Sequence[FloodStatus], *, now: datetime) -> dict[str, Any]:
    features = []
    for s in statuses:
        entity = flood_entity(s)
        geometry = (
            {"type": "Point", "coordinates": [s.lon, s.lat]}
            if s.lat is not None and s.lon is not None
            else None
        )
        features.append(
            {"type": "Feature", "id": entity["id"], "geometry": geometry, "properties": entity}
        )
    out = collection(features, generated=now, name="akita_flood_monitoring")
    out["units"] = {"currentLevel": "cm", "alertLevel": "cm", "precipitation": "mm/h"}
    return out


def flood_monitoring_csv(statuses: Sequence[FloodStatus]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(FLOOD_CSV_COLUMNS)
    licence = licence_meta()["licence_url"]
    for s in statuses:
        e = flood_entity(s)
        row = {
            **e,
            "address": "秋田県秋田市" + (s.area or ""),
            "latitude": s.lat,
            "longitude": s.lon,
            "license": licence,
        }
        w.writerow(["" if row.get(c) is None else row[c] for c in FLOOD_CSV_COLUMNS])
    return buf.getvalue()


def sites_worldmap(devices: Sequence[tuple[str, float, float, str]]) -> list[dict[str, Any]]:
    """Grafana geomap gazetteer (legacy worldmap JSON): device id -> coordinates."""
    return [
        {"key": dev, "latitude": lat, "longitude": lon, "name": name}
        for dev, lat, lon, name in devices
    ]
