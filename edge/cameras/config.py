"""Camera settings, validated; errors name the camera and the field."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Auth(StrEnum):
    NONE = "none"
    BASIC = "basic"
    DIGEST = "digest"


class Mode(StrEnum):
    SNAPSHOT = "snapshot"  # GET ``url``: one JPEG
    MJPEG = "mjpeg"  # GET ``mjpeg_url``: the first complete JPEG part of the stream


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Camera(_Cfg):
    id: str = Field(pattern=ID_PATTERN)
    # the same text as its flood sensors' ``site`` (Japanese names such as 新屋アンダーパス)
    site: str = Field(
        min_length=1, max_length=80, description="Underpass; its flood sensors set the pace"
    )
    url: str | None = Field(default=None, pattern=r"^https?://", description="JPEG snapshot URL")
    mjpeg_url: str | None = Field(
        default=None, pattern=r"^https?://", description="MJPEG (multipart/x-mixed-replace) URL"
    )
    # left out: snapshot when ``url`` is given, else mjpeg
    mode: Mode | None = None
    auth: Auth = Auth.NONE
    username: str | None = None
    password: SecretStr | None = None
    interval_s: float = Field(default=600.0, gt=0, le=86_400, description="Normal cadence")
    alert_interval_s: float = Field(default=30.0, gt=0, le=86_400, description="At 注意 or above")
    timeout_s: float = Field(default=5.0, gt=0, le=120)
    max_bytes: int = Field(default=5_000_000, ge=10_000, le=50_000_000)
    # polygons in the camera's frame pixels [[x, y], ...]: windows, entrances (filled solid)
    masks: list[list[tuple[int, int]]] = Field(default_factory=list)
    mask_colour: tuple[int, int, int] = (0, 0, 0)
    width: int = Field(default=640, ge=32, le=3840)
    height: int = Field(default=360, ge=32, le=2160)
    jpeg_quality: int = Field(default=80, ge=30, le=95)

    @property
    def capture_mode(self) -> Mode:
        if self.mode is not None:
            return self.mode
        return Mode.SNAPSHOT if self.url is not None else Mode.MJPEG

    @model_validator(mode="after")
    def _check(self) -> Camera:
        if self.url is None and self.mjpeg_url is None:
            raise ValueError(f"camera {self.id!r} -> url: give 'url' (snapshot) or 'mjpeg_url'")
        if self.mode is Mode.SNAPSHOT and self.url is None:
            raise ValueError(f"camera {self.id!r} -> mode snapshot needs 'url'")
        if self.mode is Mode.MJPEG and self.mjpeg_url is None:
            raise ValueError(f"camera {self.id!r} -> mode mjpeg needs 'mjpeg_url'")
        if self.auth is not Auth.NONE and (self.username is None or self.password is None):
            raise ValueError(
                f"camera {self.id!r} -> auth {self.auth.value} needs username and password"
            )
        for i, poly in enumerate(self.masks):
            if len(poly) < 3:
                raise ValueError(
                    f"camera {self.id!r} -> masks[{i}]: a polygon needs 3 points, got {len(poly)}"
                )
        if self.alert_interval_s > self.interval_s:
            raise ValueError(
                f"camera {self.id!r} -> alert_interval_s {self.alert_interval_s} is longer than "
                f"interval_s {self.interval_s}"
            )
        return self


class Cameras(_Cfg):
    """``[cameras]``: the image spool and the local flood rule that speeds cameras up."""

    spool_path: Path = Path("/var/lib/akita/images.db")
    spool_max_bytes: int = Field(default=200_000_000, ge=100_000, description="Drop oldest beyond")
    # the local rule: a flood sensor of the camera's site at or above this depth is 注意
    caution_cm: float = Field(default=10.0, ge=0, description="注意 depth (cloud's default)")
    hysteresis_cm: float = Field(default=2.0, ge=0)
    cameras: list[Camera] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Cameras:
        seen: set[str] = set()
        for c in self.cameras:
            if c.id in seen:
                raise ValueError(f"cameras: duplicate id {c.id!r}")
            seen.add(c.id)
        return self
