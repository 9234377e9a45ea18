"""The open-data HTTP routes (no authentication), mounted under ``/opendata``.

Data comes from ``request.app.state.service`` (contract E): the registry for what
devices exist and where, the time-series store for their latest values. Outputs are
cached for ``cache_s`` seconds per app, so a crowd of journey-planner polls costs one
store round per few seconds. ``request.app.state.opendata`` may hold an
:class:`OpendataConfig` (tests pin the clock with it); otherwise it comes from the
environment (``AKITA_GTFS_STATIC``, ``AKITA_OPENDATA_CACHE_S``).
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from cloud.opendata import geojson
from cloud.opendata.feed import FeedSource
from cloud.opendata.gtfs_rt import build_vehicle_positions, feed_to_dict, match_fixes
from cloud.opendata.gtfs_static import SAMPLE_FEED
from cloud.opendata.licence import (
    FeedLicence,
    feed_licence,
    feed_licence_from_env,
    licence_meta,
    link_header,
)
from cloud.opendata.matching import MatchConfig
from cloud.opendata.positions import flood_statuses, latest_vehicles, plow_tracks
from cloud.opendata.public import public_devices
from cloud.opendata.service_alerts import build_service_alerts, store_for
from cloud.opendata.trip_updates import TripUpdateConfig, build_trip_updates
from schemas.devices import DeviceKind

log = logging.getLogger(__name__)

router = APIRouter(prefix="/opendata", tags=["open data"])

CITY_TZ = ZoneInfo("Asia/Tokyo")
DEFAULT_STAGES = (10.0, 20.0, 30.0)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _env_feed() -> Path | None:
    value = os.environ.get("AKITA_GTFS_STATIC")
    if value is None:
        return SAMPLE_FEED
    return None if value.strip().lower() in ("", "none") else Path(value)


@dataclass
class OpendataConfig:
    """``gtfs_static``: zip or directory of the city's GTFS feed (None: no trip matching)."""

    gtfs_static: Path | None = field(default_factory=_env_feed)
    cache_s: float = field(
        default_factory=lambda: float(os.environ.get("AKITA_OPENDATA_CACHE_S", "5"))
    )
    max_age: timedelta = timedelta(minutes=5)
    clock: Callable[[], datetime] = _utcnow
    gtfs_licence: FeedLicence = field(default_factory=feed_licence_from_env)
    match: MatchConfig = field(default_factory=MatchConfig)
    trip_updates: TripUpdateConfig = field(default_factory=TripUpdateConfig)

    @classmethod
    def from_settings(cls, settings: Any) -> OpendataConfig:
        """From ``[opendata]`` (an :class:`OpendataSettings`); what it leaves unset comes
        from the ``AKITA_GTFS_*`` variables, as before."""
        cfg = cls()
        if settings is None:
            return cfg
        if settings.gtfs_static is not None:
            value = settings.gtfs_static.strip()
            cfg.gtfs_static = None if value.lower() in ("", "none") else Path(value)
        if settings.gtfs_licence is not None:
            cfg.gtfs_licence = feed_licence(
                settings.gtfs_licence,
                url=settings.gtfs_licence_url,
                attribution=settings.gtfs_attribution,
            )
        return cfg


class _Cache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, Any]] = {}

    def get(self, key: str, ttl: float, make: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        value = make()
        with self._lock:
            self._items[key] = (now + ttl, value)
        return value


def _config(request: Request) -> OpendataConfig:
    cfg = getattr(request.app.state, "opendata", None)
    if cfg is None:
        service = getattr(request.app.state, "service", None)
        cfg = OpendataConfig.from_settings(
            getattr(getattr(service, "settings", None), "opendata", None)
        )
        request.app.state.opendata = cfg
    return cfg  # type: ignore[no-any-return]


def _cache(request: Request) -> _Cache:
    cache = getattr(request.app.state, "opendata_cache", None)
    if cache is None:
        cache = request.app.state.opendata_cache = _Cache()
    return cache  # type: ignore[no-any-return]


def _service(request: Request) -> Any:
    service = getattr(request.app.state, "service", None)
    if service is None:
        raise HTTPException(503, "open data is not available: the cloud service is not running")
    return service


def feed_source(request: Request, cfg: OpendataConfig) -> FeedSource:
    """The service's feed when it serves the configured path, else one per app and path
    (tests and tools point the app at another feed)."""
    own = getattr(getattr(request.app.state, "service", None), "gtfs", None)
    if isinstance(own, FeedSource) and own.path == cfg.gtfs_static:
        return own
    feeds = getattr(request.app.state, "opendata_feeds", None)
    if feeds is None:
        feeds = request.app.state.opendata_feeds = {}
    key = (cfg.gtfs_static, cfg.match)
    if key not in feeds:
        feeds[key] = FeedSource(cfg.gtfs_static, match=cfg.match)
    return feeds[key]  # type: ignore[no-any-return]


def _headers(cfg: OpendataConfig) -> dict[str, str]:
    return {
        "Cache-Control": f"public, max-age={int(cfg.cache_s)}",
        "Access-Control-Allow-Origin": "*",
        "Link": link_header(),
    }


def _detect_settings(service: Any) -> tuple[dict[str, Any], tuple[float, float, float]]:
    detect = getattr(getattr(service, "settings", None), "detect", None)
    sites = dict(getattr(detect, "sites", {}) or {})
    flood = getattr(detect, "flood", None)
    stages = tuple(getattr(flood, "stages_cm", DEFAULT_STAGES))
    return sites, (stages[0], stages[1], stages[2])


@router.get(
    "/",
    name="opendata_index",
    summary="Open data index: datasets, formats, licence and attribution",
)
def index(request: Request) -> JSONResponse:
    cfg = _config(request)
    base = str(request.url_for("opendata_index")).rstrip("/")
    datasets = [
        {
            "id": "gtfs-rt-vehicle-positions",
            "title": "Bus positions (GTFS-Realtime VehiclePositions)",
            "url": f"{base}/gtfs-rt/vehicle-positions.pb",
            "debug_url": f"{base}/gtfs-rt/vehicle-positions.pb?format=json",
            "format": "application/x-protobuf",
            "static_feed": f"{base}/gtfs/static.zip" if cfg.gtfs_static else None,
            "update_s": cfg.cache_s,
            **licence_meta(),
        },
        {
            "id": "gtfs-rt-trip-updates",
            "title": "Predicted bus arrivals (GTFS-Realtime TripUpdates)",
            "url": f"{base}/gtfs-rt/trip-updates.pb",
            "debug_url": f"{base}/gtfs-rt/trip-updates.pb?format=json",
            "format": "application/x-protobuf",
            "static_feed": f"{base}/gtfs/static.zip" if cfg.gtfs_static else None,
            "update_s": cfg.cache_s,
            **licence_meta(),
        },
        {
            "id": "gtfs-rt-service-alerts",
            "title": "Bus service alerts (GTFS-Realtime ServiceAlerts)",
            "url": f"{base}/gtfs-rt/service-alerts.pb",
            "debug_url": f"{base}/gtfs-rt/service-alerts.pb?format=json",
            "format": "application/x-protobuf",
            "update_s": cfg.cache_s,
            **licence_meta(),
        },
        *(
            [
                {
                    "id": "gtfs-static",
                    "title": "Bus timetable (GTFS static), as published by the operator",
                    "url": f"{base}/gtfs/static.zip",
                    "format": "application/zip",
                    "publisher": cfg.gtfs_licence.attribution,
                    **cfg.gtfs_licence.meta(),
                }
            ]
            if cfg.gtfs_static
            else []
        ),
        {
            "id": "snowplows",
            "title": "Snowplow positions",
            "url": f"{base}/snowplows.geojson",
            "format": "application/geo+json",
            **licence_meta(),
        },
        {
            "id": "snowplow-cleared-segments",
            "title": "Road segments cleared by snowplows today (JST)",
            "url": f"{base}/snowplows/cleared-segments.geojson",
            "format": "application/geo+json",
            **licence_meta(),
        },
        {
            "id": "flood-monitoring",
            "title": "Road flood sensors, current status (FIWARE FloodMonitoring)",
            "url": f"{base}/flood-monitoring.geojson",
            "csv_url": f"{base}/flood-monitoring.csv",
            "format": "application/geo+json",
            "data_model": "https://github.com/smart-data-models/dataModel.Environment/tree/master/FloodMonitoring",
            **licence_meta(),
        },
    ]
    return JSONResponse(
        {"publisher": licence_meta()["publisher"], **licence_meta(), "datasets": datasets},
        headers=_headers(cfg),
    )


@router.get(
    "/gtfs-rt/vehicle-positions.pb",
    summary="GTFS-Realtime VehiclePositions of the city buses (FULL_DATASET)",
    response_class=Response,
)
def vehicle_positions(
    request: Request,
    format: str = Query("pb", pattern="^(pb|json)$", description="pb, or json to debug"),
) -> Response:
    cfg = _config(request)
    service = _service(request)

    feed = _realtime(request, cfg, service)[0]
    return _rt_response(feed, cfg, format)


@router.get(
    "/gtfs-rt/trip-updates.pb",
    summary="GTFS-Realtime TripUpdates: predicted arrivals of the city buses (FULL_DATASET)",
    response_class=Response,
)
def trip_updates(
    request: Request,
    format: str = Query("pb", pattern="^(pb|json)$", description="pb, or json to debug"),
) -> Response:
    cfg = _config(request)
    service = _service(request)
    return _rt_response(_realtime(request, cfg, service)[1], cfg, format)


def _realtime(request: Request, cfg: OpendataConfig, service: Any) -> tuple[Any, Any]:
    """VehiclePositions and TripUpdates from one matching pass, cached together."""
    source = feed_source(request, cfg)

    def make() -> Any:
        now = cfg.clock()
        fixes = [
            s.fix
            for s in latest_vehicles(
                service.store, public_devices(service), "bus", now=now, max_age=cfg.max_age
            )
        ]
        static, matcher = source.get(), source.matcher()
        matches = match_fixes(fixes, static, matcher)
        vp = build_vehicle_positions(fixes, now=now, static=static, matches=matches)
        tu = build_trip_updates(fixes, matches, matcher, now=now, config=cfg.trip_updates)
        return vp, tu

    return _cache(request).get("gtfs-rt", cfg.cache_s, make)  # type: ignore[no-any-return]


@router.get(
    "/gtfs-rt/service-alerts.pb",
    summary="GTFS-Realtime ServiceAlerts written by staff (FULL_DATASET)",
    response_class=Response,
)
def service_alerts(
    request: Request,
    format: str = Query("pb", pattern="^(pb|json)$", description="pb, or json to debug"),
) -> Response:
    cfg = _config(request)
    service = _service(request)

    def make() -> Any:
        return build_service_alerts(store_for(service).all(), now=cfg.clock())

    return _rt_response(_cache(request).get("gtfs-rt-alerts", cfg.cache_s, make), cfg, format)


def _rt_response(feed: Any, cfg: OpendataConfig, format: str) -> Response:
    if format == "json":
        body = {
            "licence": licence_meta(),
            "static_feed_licence": cfg.gtfs_licence.meta(),
            "feed": feed_to_dict(feed),
        }
        return JSONResponse(body, headers=_headers(cfg))
    return Response(
        feed.SerializeToString(), media_type="application/x-protobuf", headers=_headers(cfg)
    )


@router.get("/gtfs/static.zip", summary="The GTFS static feed the realtime feed refers to")
def gtfs_static_zip(request: Request) -> Response:
    cfg = _config(request)
    path = cfg.gtfs_static
    if path is None:
        raise HTTPException(404, "no GTFS static feed is configured")
    if path.is_file():
        data = path.read_bytes()
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(path.glob("*.txt")):
                z.write(p, p.name)
        data = buf.getvalue()
    # the operator's feed under the operator's licence, not the city's
    headers = {**_headers(cfg), "Link": cfg.gtfs_licence.link_header()}
    return Response(data, media_type="application/zip", headers=headers)


@router.get("/snowplows.geojson", summary="Snowplow positions (GeoJSON)")
def snowplows(request: Request) -> JSONResponse:
    cfg = _config(request)
    service = _service(request)

    def make() -> Any:
        now = cfg.clock()
        fixes = latest_vehicles(
            service.store, public_devices(service), "snowplow", now=now, max_age=cfg.max_age
        )
        return geojson.snowplows(fixes, now=now)

    body = _cache(request).get("snowplows", cfg.cache_s, make)
    return JSONResponse(body, media_type="application/geo+json", headers=_headers(cfg))


@router.get(
    "/snowplows/cleared-segments.geojson",
    summary="Road segments cleared with the blade down since 00:00 JST today (GeoJSON)",
)
def cleared_segments(request: Request) -> JSONResponse:
    cfg = _config(request)
    service = _service(request)

    def make() -> Any:
        now = cfg.clock()
        local = now.astimezone(CITY_TZ)
        start = datetime(local.year, local.month, local.day, tzinfo=CITY_TZ).astimezone(UTC)
        plows = [
            dev
            for dev, info in sorted(public_devices(service).items())
            if info.kind == DeviceKind.VEHICLE and info.vehicle_type in (None, "snowplow")
        ]
        tracks = plow_tracks(service.store, plows, start, now)
        tracks = {d: t for d, t in tracks.items() if any(p.plow_down for p in t)}
        return geojson.cleared_segments(tracks, now=now)

    # the day's tracks are heavier to read: cache a little longer than positions
    body = _cache(request).get("cleared", max(cfg.cache_s, 30.0), make)
    return JSONResponse(body, media_type="application/geo+json", headers=_headers(cfg))


def _flood(request: Request) -> list[Any]:
    cfg = _config(request)
    service = _service(request)

    def make() -> Any:
        sites, stages = _detect_settings(service)
        return flood_statuses(
            service.store, public_devices(service), sites=sites, default_stages=stages
        )

    return _cache(request).get("flood", cfg.cache_s, make)  # type: ignore[no-any-return]


@router.get(
    "/flood-monitoring.geojson",
    summary="Road flood sensors, current status as FIWARE FloodMonitoring (GeoJSON)",
)
def flood_monitoring_geojson(request: Request) -> JSONResponse:
    cfg = _config(request)
    body = geojson.flood_monitoring(_flood(request), now=cfg.clock())
    return JSONResponse(body, media_type="application/geo+json", headers=_headers(cfg))


@router.get(
    "/flood-monitoring.csv",
    summary="Road flood sensors, current status as FIWARE FloodMonitoring (CSV)",
    response_class=Response,
)
def flood_monitoring_csv(request: Request) -> Response:
    cfg = _config(request)
    text = geojson.flood_monitoring_csv(_flood(request))
    headers = {**_headers(cfg), "Content-Disposition": 'inline; filename="flood-monitoring.csv"'}
    return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8", headers=headers)


@router.get(
    "/sites.worldmap.json",
    summary="Fixed-site device coordinates as a Grafana geomap gazetteer",
)
def sites_worldmap(request: Request) -> JSONResponse:
    cfg = _config(request)
    service = _service(request)
    rows = [
        (dev, info.lat, info.lon, info.site or dev)
        for dev, info in sorted(public_devices(service).items())
        if info.lat is not None and info.lon is not None and info.kind != DeviceKind.VEHICLE
    ]
    return JSONResponse(geojson.sites_worldmap(rows), headers=_headers(cfg))
