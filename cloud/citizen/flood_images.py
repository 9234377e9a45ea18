"""The public page of a flood alert's picture, opened from the residents' 警戒/危険 e-mail.

``/citizen/flood/images/{token}``: the capability link of :mod:`cloud.images.links`.
The page is plain HTML (no JavaScript) with the stage, the time of the reading and the
masked picture, served by ``.../image.jpg`` under the same token with ``no-store``: a
shared cache never keeps a picture beyond the link's life. An unknown token is a 404,
an expired one a 410, each with a Japanese explanation. The alert must still be public
and its device of a public kind when the page is opened (a setting may have changed).
Nothing on the page or in the JPEG names the camera, the gateway or the image's hash.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from cloud.alerts.errors import AlertNotFound
from cloud.citizen.flood import STAGE_LABELS
from cloud.citizen.routes import render
from cloud.images.links import LinkState
from cloud.images.public import sensor_picture, sensor_pictures
from cloud.images.store import ImageInfo
from cloud.opendata.public import is_public_device

log = logging.getLogger(__name__)

router = APIRouter(prefix="/citizen", tags=["citizen"], include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _images(request: Request) -> Any | None:
    images = getattr(request.app.state.service, "images", None)
    return images if getattr(images, "links", None) is not None else None


def _gone(request: Request, *, expired: bool) -> HTMLResponse:
    if expired:
        title, status = "リンクの有効期限が切れています", 410
        text = "この画像のリンクは、お知らせから48時間で無効になります。"
    else:
        title, status = "ページが見つかりません", 404
        text = "この画像のリンクは見つかりません。メールに記載のアドレスをご確認ください。"
    page = render(
        request,
        "message.html",
        title,
        status_code=status,
        paragraphs=[text, "現在の冠水の状況は、冠水情報のページでご確認いただけます。"],
        link={"href": request.url_for("citizen_flood").path, "text": "現在の道路冠水の状況へ"},
    )
    page.headers.update(NO_STORE)
    return page


def _resolve(request: Request, token: str) -> tuple[Any, Any, ImageInfo | None] | HTMLResponse:
    """(link, alert record, picture) for a valid token of a still-public alert."""
    images = _images(request)
    if images is None:
        return _gone(request, expired=False)
    state, link = images.links.find(token)
    if state is not LinkState.VALID or link is None:
        return _gone(request, expired=state is LinkState.EXPIRED)
    try:
        record = request.app.state.service.alerts.get(link.alert_id)
    except AlertNotFound:
        return _gone(request, expired=False)
    if not images.links.may_show(record.alert):
        return _gone(request, expired=False)
    return link, record, images.alert_images.picture(link.alert_id, link.at)


@router.get("/flood/images/{token}", response_class=HTMLResponse, name="citizen_flood_image")
def flood_image_page(request: Request, token: str) -> HTMLResponse:
    found = _resolve(request, token)
    if isinstance(found, HTMLResponse):
        return found
    link, record, picture = found
    alert = record.alert
    page = render(
        request,
        "flood_image.html",
        "冠水箇所の画像",
        place=alert.site or "",
        area=alert.area,
        stage=link.stage,
        stage_label=STAGE_LABELS.get(link.stage, link.stage),
        observed_at=link.at,
        picture=picture,
        image_src=request.url_for("citizen_flood_image_jpeg", token=token).path,
        expires_at=link.expires_at,
        now=datetime.now(UTC),
    )
    page.headers.update(NO_STORE)
    return page


@router.get("/flood/images/{token}/image.jpg", name="citizen_flood_image_jpeg")
def flood_image_jpeg(request: Request, token: str) -> Response:
    found = _resolve(request, token)
    if isinstance(found, HTMLResponse):
        return found
    _link, _record, picture = found
    images = _images(request)
    if picture is None or images is None:
        return _gone(request, expired=False)
    try:
        body = images.store.read(picture)
    except OSError as exc:  # a file lost from disk: say so to staff, not to the public
        log.warning("flood_image_unreadable image=%d reason=%s", picture.id, exc)
        return _gone(request, expired=False)
    return Response(body, media_type="image/jpeg", headers=NO_STORE)


def flood_pictures(request: Request, sensors: Any) -> dict[str, ImageInfo]:
    """The flood page's pictures by sensor id; empty without ``[images]``."""
    service = request.app.state.service
    images = getattr(service, "images", None)
    if images is None:
        return {}
    return sensor_pictures(
        images.store,
        service.sessionmaker,
        [(s.device_id, s.site) for s in sensors],
        lambda device_id: is_public_device(service, device_id),
    )


@router.get("/flood/sensors/{device_id}/image.jpg", name="citizen_flood_sensor_image")
def flood_sensor_jpeg(request: Request, device_id: str) -> Response:
    """The latest picture at a public sensor's site (the flood page's ``<img>``)."""
    service = request.app.state.service
    images = getattr(service, "images", None)
    if images is None or len(device_id) > 64 or not is_public_device(service, device_id):
        return _gone(request, expired=False)
    site = service.devices().get(device_id)
    picture = sensor_picture(images.store, service.sessionmaker, getattr(site, "site", None))
    if picture is None:
        return _gone(request, expired=False)
    try:
        body = images.store.read(picture)
    except OSError as exc:
        log.warning("flood_image_unreadable image=%d reason=%s", picture.id, exc)
        return _gone(request, expired=False)
    # a minute of browser cache: the page reloads it, a shared cache keeps nothing
    return Response(body, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=60"})
