"""Console settings. Read from ``service.settings.console`` when the cloud settings carry
that section, else these defaults (the section is optional)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ConsoleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    idle_timeout_s: float = Field(
        default=30 * 60, gt=0, le=24 * 3600, description="A session unused this long ends"
    )
    max_session_s: float = Field(
        default=12 * 3600,
        gt=0,
        le=7 * 24 * 3600,
        description="A session ends this long after sign-in",
    )
    max_failures: int = Field(
        default=10, ge=3, le=100, description="Wrong passwords in a row that lock the account"
    )
    lockout_s: float = Field(
        default=15 * 60, gt=0, le=24 * 3600, description="How long a locked account stays locked"
    )
    secure_cookie: Literal["auto", "always"] = Field(
        default="auto",
        description="auto: Secure cookie when the request came over TLS (or a trusted proxy "
        "says so); always: Secure even on plain http (then only https works)",
    )
    live_refresh_s: float = Field(
        default=30,
        ge=0,
        le=3600,
        description="Pages with live parts (overview, alerts) refresh them this often with "
        "JavaScript; 0 = never. A refresh does not count as use for the idle timeout",
    )
    map_tiles: str | None = Field(
        default="https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png",
        description="Tile URL of the overview map (地理院タイル); None = markers on a blank map",
    )


def console_settings(service: Any) -> ConsoleSettings:
    found = getattr(getattr(service, "settings", None), "console", None)
    return found if isinstance(found, ConsoleSettings) else ConsoleSettings()
