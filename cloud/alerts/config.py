"""Alert lifecycle settings (the ``[alerts]`` section of the cloud settings)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AlertConfig(BaseModel):
    """How detections become alerts.

    Defaults: a cleared condition must stay clear for 5 minutes before the alert
    auto-resolves (``hold_off_s``); a condition that re-activates inside that time
    keeps the same alert, so a flapping sensor produces one alert, not a storm.
    An alert also stays open at least ``min_open_s`` (60 s) however fast it clears.
    """

    model_config = ConfigDict(extra="forbid")

    hold_off_s: float = Field(
        default=300.0, ge=0, description="Seconds a condition must stay clear before auto-resolve"
    )
    hold_off_by_kind: dict[str, float] = Field(
        default_factory=dict, description="Per alert kind overrides of hold_off_s"
    )
    min_open_s: float = Field(
        default=60.0, ge=0, description="An alert is never auto-resolved sooner than this"
    )
    write_measurement: bool = Field(
        default=True, description="Write the 'alert' measurement to the time-series store"
    )

    def hold_off(self, kind: str) -> float:
        return self.hold_off_by_kind.get(kind, self.hold_off_s)
