"""The cameras as devices of the gateway: config checks and their entries in the meta.

Separate from :mod:`edge.cameras.wiring` so that loading a config or building the meta
imports no HTTP client or imaging library.
"""

from __future__ import annotations

from edge.cameras.config import Cameras
from schemas.kinds.flood_camera import KIND as FLOOD_CAMERA
from schemas.wire import DeviceInfo


def check_cameras(cameras: Cameras, device_ids: list[str]) -> None:
    """A camera is a device in the cloud's registry: its id must not be a device's too."""
    taken = set(device_ids)
    for i, cam in enumerate(cameras.cameras):
        if cam.id in taken:
            raise ValueError(
                f"cameras.cameras[{i}] (id {cam.id!r}) -> id: {cam.id!r} is also a "
                "[[devices]] id; a camera needs its own device id"
            )


def camera_infos(cameras: Cameras | None) -> list[DeviceInfo]:
    """The cameras as devices of the gateway's retained meta (kind ``flood_camera``)."""
    if cameras is None:
        return []
    return [
        DeviceInfo.model_validate(
            {
                "device_id": c.id,
                "kind": FLOOD_CAMERA.name,
                "site": c.site,
                "poll_interval_s": c.interval_s,
            }
        )
        for c in cameras.cameras
    ]
