"""Flood cameras: each camera's latest picture with its site, the time it was taken and
the site's flood depth. Pictures come from :mod:`cloud.images` (the same store and
``latest`` as the staff API), depths from :func:`cloud.citizen.flood.flood_status` (the
same reading as the citizen flood page); the console adds no rule of its own."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from cloud.citizen.flood import SensorStatus, flood_status
from cloud.console.web import ConsoleRoute, Staff, db, render, service_of
from cloud.db.models import DeviceRow
from cloud.images.store import ImageInfo, ImageStore
from cloud.images.validate import CAMERA_KIND

log = logging.getLogger(__name__)
router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


@dataclass(frozen=True)
class CameraView:
    device: DeviceRow
    image: ImageInfo | None
    sensors: list[SensorStatus]  # the flood sensors of the camera's site


def _store(request: Request) -> ImageStore | None:
    images = getattr(service_of(request), "images", None)
    return None if images is None else images.store


@router.get("/cameras", name="console_cameras")
def camera_list(request: Request, staff: Staff) -> HTMLResponse:
    sm = db(request)
    store = _store(request)
    with sm() as s:
        cameras = list(
            s.scalars(
                select(DeviceRow)
                .where(DeviceRow.kind == CAMERA_KIND)
                .order_by(DeviceRow.site, DeviceRow.device_id)
            )
        )
    by_site: dict[str, list[SensorStatus]] = {}
    if cameras:
        for sensor in flood_status(sm, service_of(request).store):
            if sensor.site:
                by_site.setdefault(sensor.site, []).append(sensor)
    views = [
        CameraView(
            c,
            store.latest(c.device_id) if store is not None else None,
            by_site.get(c.site, []) if c.site else [],
        )
        for c in cameras
    ]
    return render(request, "cameras.html", "冠水カメラ", cameras=views, has_store=store is not None)


@router.get("/cameras/images/{image_id}.jpg", name="console_camera_image")
def camera_image(request: Request, staff: Staff, image_id: Annotated[int, Path(ge=1)]) -> Response:
    store = _store(request)
    info = store.get(image_id) if store is not None else None
    if store is None or info is None:
        raise HTTPException(404, detail=f"画像 {image_id} はありません。")
    try:
        body = store.read(info)
    except OSError as exc:
        log.warning("console_camera_image_unreadable image=%d reason=%s", image_id, exc)
        raise HTTPException(404, detail=f"画像 {image_id} のファイルが読めません。") from exc
    return Response(body, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
