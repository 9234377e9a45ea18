"""The latest picture of each underpass for the public flood page (cloud/citizen).

A sensor's picture is the newest image of any camera registered on the sensor's site,
shown only for a sensor of a public kind; the page and its image URL name the sensor
(already public), never the camera, its gateway or the image's hash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy.orm import Session, sessionmaker

from cloud.images.alerts import cameras_at
from cloud.images.store import ImageInfo, ImageStore


def sensor_picture(
    store: ImageStore, sessions: sessionmaker[Session], site: str | None
) -> ImageInfo | None:
    if not site:
        return None
    found = [i for c in cameras_at(sessions, site) if (i := store.latest(c)) is not None]
    return max(found, key=lambda i: (i.taken_at, i.id), default=None)


def sensor_pictures(
    store: ImageStore,
    sessions: sessionmaker[Session],
    sensors: Iterable[tuple[str, str | None]],
    is_public: Callable[[str], bool],
) -> dict[str, ImageInfo]:
    """{sensor id: its site's latest picture} for the public sensors that have one."""
    out: dict[str, ImageInfo] = {}
    for device_id, site in sensors:
        picture = sensor_picture(store, sessions, site) if is_public(device_id) else None
        if picture is not None:
            out[device_id] = picture
    return out
