"""The flood rule a gateway runs on its own while its uplink is down (docs/commands.md,
section 11).

The cloud derives it from its ``device_action`` rules (``cloud/commands/edge_rules.py``)
and pushes it as the command action :data:`RULES_UPDATE` to the warning sign; the edge
(``edge/failsafe.py``) parses the same params. Params are the contract's flat scalars,
so one rule set per sign: the sensor it watches, the depth at which each switch goes
on, and the depth below which both go off (the cloud's all-clear: below the caution
stage by the detector's hysteresis).

**Versions are ordered.** ``version`` is a counter the cloud raises whenever the rule's
content changes; ``digest`` is a hash of that content, checked on arrival. A gateway
installs a rule only if it supersedes the one it has (:meth:`EdgeFloodRule.refusal`):
a late re-delivery of an older push must never replace a newer rule in a storm.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.wire import DeviceId

RULES_UPDATE = "rules_update"
# the sign actions a local rule may switch; each takes {"value": true | false} at the edge
SWITCHES = ("lamp", "siren")
# what a rules_update result's read-back holds: the rule installed on the gateway
READBACK_VERSION, READBACK_DIGEST = "rules_version", "rules_digest"
_CONTENT = ("sensor", "lamp_on_cm", "siren_on_cm", "off_below_cm")


def content_digest(body: dict[str, object]) -> str:
    """16 hex digits of SHA-256 over the rule's content (not its version): the same
    content gives the same digest in every process and on every gateway."""
    content: dict[str, object] = {}
    for key in _CONTENT:
        value = body.get(key)
        if value is not None:  # 20 and 20.0 are one depth: the digest must agree
            content[key] = float(value) if key.endswith("_cm") else value  # type: ignore[arg-type]
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class EdgeFloodRule(BaseModel):
    """One sign's local rule: ``<switch>_on_cm`` switches it on, ``off_below_cm`` off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1, le=2**53, description="Ordered: raised on every change")
    digest: str = Field(pattern=r"^[0-9a-f]{16}$", description="content_digest of the rule")
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
        expected = content_digest(self.model_dump())
        if self.digest != expected:  # a rule garbled or edited on the way is not run
            raise ValueError(f"digest {self.digest!r} does not match the rule ({expected!r})")
        return self

    @classmethod
    def derive(cls, version: int, **content: object) -> EdgeFloodRule:
        """The rule with its digest computed (what the cloud sends)."""
        return cls.model_validate(
            {**content, "version": version, "digest": content_digest(content)}
        )

    def with_version(self, version: int) -> EdgeFloodRule:
        return EdgeFloodRule.model_validate({**self.model_dump(), "version": version})

    def thresholds(self) -> list[tuple[str, float]]:
        """(switch, depth that turns it on), for the switches this rule drives."""
        pairs = (("lamp", self.lamp_on_cm), ("siren", self.siren_on_cm))
        return [(name, cm) for name, cm in pairs if cm is not None]

    def refusal(self, installed: EdgeFloodRule | None) -> str | None:
        """Why this rule may not replace ``installed``, or None when it may: a higher
        version, or the same version and digest (a re-delivery, harmless)."""
        if installed is None or self.version > installed.version:
            return None
        if self.version == installed.version and self.digest == installed.digest:
            return None
        if self.version == installed.version:
            return (
                f"version {self.version} is installed with digest {installed.digest!r}, "
                f"not {self.digest!r}; a changed rule needs a higher version"
            )
        return f"version {self.version} is older than the installed version {installed.version}"

    def readback(self) -> dict[str, str | int]:
        """What the gateway reports as installed (a result's ``readback``)."""
        return {READBACK_VERSION: self.version, READBACK_DIGEST: self.digest}

    def params(self) -> dict[str, str | int | float]:
        """The command's params (flat scalars, as ``schemas.commands.Params`` wants)."""
        return self.model_dump(exclude_none=True)
