"""Underpass flood camera (issue 18): the small reading the telemetry carries per image.

The picture itself travels on ``akita/v1/<gateway>/image`` (:mod:`schemas.images`); the
telemetry carries only which image was taken, when (the reading's ``ts``), its size and
its hash, so the cloud can tell an image that never arrived from one that did. Not
public: the image's metadata is not open data (docs/cameras.md), only the masked
picture of a public camera is shown on the citizen flood page.

FIWARE: Device (dataModel.Device), ``controlledProperty=image``.
"""

from __future__ import annotations

from pydantic import Field

from schemas.images import MAX_IMAGE_BYTES
from schemas.kinds.base import Kind, Values


class FloodCameraValues(Values):
    """Underpass flood camera: one reading per masked image taken."""

    image_seq: int | None = Field(
        default=None, ge=1, description="The gateway's image counter (the image message's seq)"
    )
    size: int | None = Field(
        default=None,
        ge=1,
        le=MAX_IMAGE_BYTES,
        description="Bytes of the masked JPEG",
        json_schema_extra={"unit": "B", "unitCode": "AD", "fiware": None},
    )
    sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the masked JPEG"
    )


KIND = Kind(
    name="flood_camera",
    values=FloodCameraValues,
    title="Flood camera",
    domain="flood",
    fiware="Device",
    public=False,  # an image's metadata never goes to open data
    headline="size",
)
