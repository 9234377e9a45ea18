"""Settings of the image store and its receiver (``[images]`` in the cloud settings)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from schemas.images import MAX_IMAGE_BYTES

_DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class ImageSettings(BaseModel):
    """Where images are kept, for how long, and the receiver's own broker account.

    The receiver connects to the ingest's broker (host, port, TLS from ``ingest``) with
    an account of its own: the shipped Mosquitto ties a session to its username, so a
    second connection under the ingest worker's username would close the worker's.
    """

    model_config = ConfigDict(extra="forbid")

    dir: Path = Field(description="Image files (0700 directories, 0600 files)")
    retention_days: int = Field(
        default=30, ge=1, le=3650, description="How long an image is kept (per camera: below)"
    )
    alert_retention_days: int = Field(
        default=365, ge=1, le=3650, description="How long an image attached to an alert is kept"
    )
    camera_retention_days: dict[str, int] = Field(
        default_factory=dict, description="Per-camera retention in days, overriding the default"
    )
    retention_every_s: float = Field(
        default=3600.0, gt=0, le=86_400, description="How often the retention sweep runs"
    )
    max_bytes: int = Field(
        default=MAX_IMAGE_BYTES,
        ge=1,
        le=MAX_IMAGE_BYTES,
        description="Largest JPEG accepted; bigger ones are dead-lettered",
    )
    alert_within_s: float = Field(
        default=600.0,
        gt=0,
        le=3600,
        description="A flood alert's picture is its site's image nearest the reading time, "
        "taken at most this far from it",
    )
    receive: bool = Field(
        default=True,
        description="Run the receiver in this process (`akita cloud run`); one process "
        "per city subscribes, so images of one camera are stored in the order taken",
    )
    username: str | None = Field(
        default=None, description="Receiver's broker user (akita-images on the shipped broker)"
    )
    password: SecretStr | None = None
    client_id: str = Field(
        default="akita-images",
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="MQTT client id (the username, on the shipped broker)",
    )
    session_expiry_s: int = Field(
        default=7 * 86_400,
        ge=60,
        description="How long the broker keeps images for a receiver that is down",
    )
    receive_maximum: int = Field(
        default=10, ge=1, le=1000, description="Images in flight from the broker at once"
    )

    @field_validator("camera_retention_days")
    @classmethod
    def _per_camera(cls, value: dict[str, int]) -> dict[str, int]:
        for camera, days in value.items():
            if not _DEVICE_ID.match(camera):
                raise ValueError(f"camera id {camera!r} is not a device id")
            if not 1 <= days <= 3650:
                raise ValueError(f"camera {camera!r}: {days} days is outside 1..3650")
        return value

    @model_validator(mode="after")
    def _alert_images_outlive_others(self) -> ImageSettings:
        longest = max([self.retention_days, *self.camera_retention_days.values()])
        if self.alert_retention_days < longest:
            raise ValueError(
                f"alert_retention_days {self.alert_retention_days} is shorter than a "
                f"camera's retention ({longest} days): an alert's image would go first"
            )
        return self

    def retention_for(self, camera_id: str) -> int:
        return self.camera_retention_days.get(camera_id, self.retention_days)
