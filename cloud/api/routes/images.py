"""Camera images (viewer): a camera's latest image, its images in a time range, one
image by id, and the images attached to an alert. Bytes are served as ``image/jpeg``;
every answer is ``Cache-Control: no-store`` (staff data: no shared or browser cache
keeps a picture of a street after retention removed it)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from pydantic import AwareDatetime, BaseModel

from cloud.api.auth import CurrentUser, ServiceDep
from cloud.images.store import ImageInfo, ImageStore

router = APIRouter(tags=["images"])

NO_STORE = {"Cache-Control": "no-store"}
MAX_RANGE = timedelta(days=366)
CameraPath = Annotated[str, Path(min_length=1, max_length=64, description="Camera device id")]
_JPEG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}}, "description": "The JPEG"},
    404: {"description": "No such image, or no image store configured"},
}


class ImagePublic(BaseModel):
    id: int
    camera_id: str
    gateway_id: str
    site: str
    seq: int
    sha256: str
    size: int
    width: int
    height: int
    taken_at: datetime
    received_at: datetime
    url: str


def _store(service: ServiceDep) -> ImageStore:
    images = service.images
    if images is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no image store ([images] unset)")
    store: ImageStore = images.store
    return store


def _public(info: ImageInfo) -> ImagePublic:
    return ImagePublic(**vars(info), url=f"/images/{info.id}")


def _jpeg(store: ImageStore, info: ImageInfo | None, what: str) -> Response:
    if info is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no image: {what}")
    headers = {**NO_STORE, "X-Image-Taken-At": info.taken_at.isoformat()}
    return Response(store.read(info), media_type="image/jpeg", headers=headers)


@router.get(
    "/cameras/{camera_id}/images/latest", response_class=Response, responses=_JPEG,
    summary="A camera's latest image (JPEG)",
)  # fmt: skip
def latest_image(camera_id: CameraPath, service: ServiceDep, _user: CurrentUser) -> Response:
    store = _store(service)
    return _jpeg(store, store.latest(camera_id), f"camera {camera_id!r} has none")


@router.get(
    "/cameras/{camera_id}/images", response_model=list[ImagePublic],
    summary="A camera's images taken in [since, until), oldest first",
)  # fmt: skip
def camera_images(
    camera_id: CameraPath,
    since: AwareDatetime,
    until: AwareDatetime,
    service: ServiceDep,
    _user: CurrentUser,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[ImagePublic]:
    if until <= since:
        raise HTTPException(
            422,
            detail=f"until ({until.isoformat()}) must be after since ({since.isoformat()})",
        )
    if until - since > MAX_RANGE:
        raise HTTPException(
            422,
            detail=f"since..until spans {until - since}; at most {MAX_RANGE.days} days",
        )
    response.headers.update(NO_STORE)
    return [_public(i) for i in _store(service).between(camera_id, since, until, limit)]


@router.get(
    "/images/{image_id}", response_class=Response, responses=_JPEG, summary="One image (JPEG)"
)
def one_image(
    image_id: Annotated[int, Path(ge=1)], service: ServiceDep, _user: CurrentUser
) -> Response:
    store = _store(service)
    return _jpeg(store, store.get(image_id), f"id {image_id}")


@router.get(
    "/alerts/{alert_id}/images", response_model=list[ImagePublic],
    summary="The images attached to an alert",
)  # fmt: skip
def alert_images(
    alert_id: Annotated[str, Path(min_length=1, max_length=64)],
    service: ServiceDep,
    _user: CurrentUser,
    response: Response,
) -> list[ImagePublic]:
    response.headers.update(NO_STORE)
    return [_public(i) for i in _store(service).for_alert(alert_id)]
