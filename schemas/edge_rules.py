"""The flood rule a gateway runs on its own while its uplink is down (docs/commands.md,
section 11).

The cloud derives it from its ``device_action`` rules (``cloud/commands/edge_rules.py``)
and pushes it as the command action :data:`RULES_UPDATE` to the warning sign; the edge
(``edge/failsafe.py``) parses the same params. Params are the contract's flat scalars,
so one rule set per sign: the sensor it watches, the depth at which each switch goes
on, and the depth below which both go off (the cloud's all-clear: below the caution
stage by the detector's hysteresis).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.wire import DeviceId

RULES_UPDATE = "rules_update"
# the sign actions a local rule may switch; each takes {"value": true | false} at the edge
SWITCHES = ("lamp", "siren")


class EdgeFloodRule(BaseModel):
    """One sign's local rule: ``<switch>_on_cm`` switches it on, ``off_below_cm`` off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1, le=2**53, description="Changes whenever the cloud's rules do")
    sensor: DeviceId = Field(description="The depth sensor on the same gateway")
    lamp_on_cm: float | None = Field(default=None, gt=0, le=1000)
    siren_on_cm: float | None = Field(default=None, gt=0, le=1000)
    off_below_cm: float = Field(gt=0, le=1000, description="Both off below this depth")

    @model_validator(mode="after")
    def _consistent(self) -> EdgeFloodRule:
        ons = self.thresholds()
        if not ons:
            raise ValueError("one of lamp_on_cm, siren_on_cm is required")
        for switch, on_cm in ons:
            if on_cm <= self.off_below_cm:
                raise ValueError(
                    f"{switch}_on_cm {on_cm} must be above off_below_cm {self.off_below_cm}"
                )
        return self

    def thresholds(self) -> list[tuple[str, float]]:
        """(switch, depth that turns it on), for the switches this rule drives."""
        pairs = (("lamp", self.lamp_on_cm), ("siren", self.siren_on_cm))
        return [(name, cm) for name, cm in pairs if cm is not None]

    def params(self) -> dict[str, str | int | float]:
        """The command's params (flat scalars, as ``schemas.commands.Params`` wants)."""
        return self.model_dump(exclude_none=True)
