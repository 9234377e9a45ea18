"""Underpass warning sign (冠水警告表示板): a flashing lamp and a siren on a Modbus RTU
controller, with a lamp-current transducer.

The controller's outputs are coils the gateway writes (``lamp_on``, ``siren_on``) and a
holding register for the flash pattern; ``lamp_current`` is measured, so it says
whether light actually comes out. The cloud believes a lamp is lit only when its
current is at least :data:`LIT_MIN_A`; a lamp commanded on that draws less raises
``sign_lamp_fault`` (``cloud/detect/kinds/warning_sign.py``).

``fallback`` is the controller's own state: true once the gateway's heartbeat (a
holding register it writes every poll) has been silent for the controller's watchdog
time, after which the controller drives the lamp from its own float switch
(``docs/commands.md``, "If the gateway dies").

FIWARE: Device (dataModel.Device) with ``controlledProperty=[light, sound]``; no Smart
Data Model exists for a roadside warning sign. Not public: a lamp's state is seen on
site, and the citizen flood page reports the depth, which is what residents act on.
"""

from __future__ import annotations

from pydantic import Field

from schemas.kinds.base import Kind, Values, quantity

# A healthy LED lamp head draws 0.8-1.5 A at 24 V; below this, no light is coming out.
LIT_MIN_A = 0.3


class WarningSignValues(Values):
    """Underpass warning sign: lamp and siren outputs, flash pattern, lamp current."""

    lamp_on: bool | None = Field(default=None, description="Lamp output commanded on (coil)")
    siren_on: bool | None = Field(default=None, description="Siren output commanded on (coil)")
    lamp_pattern: int | None = Field(
        default=None, ge=0, le=3, description="0 steady, 1 slow flash, 2 fast flash, 3 alternate"
    )
    lamp_current: float | None = quantity(
        "A", "AMP", None, ge=0, le=20, desc="Lamp supply current (says whether it is lit)"
    )
    fallback: bool | None = Field(
        default=None,
        description="Controller's watchdog expired: it drives the lamp from its float switch",
    )


def lamp_lit(current: float | None) -> bool | None:
    """Whether the lamp gives light, by its current alone (None: not measured)."""
    return None if current is None else current >= LIT_MIN_A


KIND = Kind(
    name="warning_sign",
    values=WarningSignValues,
    title="Underpass warning sign",
    domain="flood",
    fiware="Device",
    public=False,
    headline="lamp_current",
)
