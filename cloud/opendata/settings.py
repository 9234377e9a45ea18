"""``[opendata]`` settings: which device kinds the public endpoints may show."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.devices import DeviceKind

# Call units sit in the homes of elderly residents living alone: their ids, positions
# and areas are personal data and stay off every public page unless a city opts in.
DEFAULT_PUBLIC_KINDS: tuple[DeviceKind, ...] = tuple(
    k for k in DeviceKind if k != DeviceKind.CALL_UNIT
)


class OpendataSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    public_kinds: list[DeviceKind] = Field(
        default_factory=lambda: list(DEFAULT_PUBLIC_KINDS),
        description=(
            "Device kinds whose ids, positions and areas public endpoints (open data, "
            "CAP feed, citizen pages) may show; default every kind but call_unit"
        ),
    )
