"""Underpass warning sign controller (Modbus RTU): lamp, siren, lamp current, watchdog.

Register map (0-based protocol addresses, unit = the sign's RS-485 address):

=========  =======  ==========================================================  ========
table      address  meaning                                                     writable
=========  =======  ==========================================================  ========
coil       0        lamp output (``lamp_on``)                                    yes
coil       1        siren output (``siren_on``)                                  yes
holding    0        lamp pattern 0 steady, 1 slow, 2 fast flash, 3 alternate     yes 0-3
holding    1        heartbeat: any write re-arms the watchdog (reads back)      yes
holding    2        lamp current, mA (uint16)                                    no
holding    3        status bits: b0 fallback active, b1 float switch wet        no
holding    4        watchdog time, s (uint16; 0 = watchdog off)                 no
=========  =======  ==========================================================  ========

Fallback (what the sign does when its gateway dies): the watchdog is armed by the first
heartbeat write. Once no heartbeat has arrived for ``watchdog_s``, the controller
ignores its coils and drives the lamp from its own float switch (wet: lamp on, fast
flash; dry: off) with the siren off, because a siren nobody can switch off would sound
all night while the lamp is what stops a car. The next heartbeat ends the fallback and
the coils as last written apply again.

The lamp current is what a transducer on the lamp supply measures, averaged over a
second (a flashing lamp draws about half). ``lamp_fails_at`` burns the lamp out from
that simulated time on: the coil still reads on, the current drops to the controller's
standby draw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from firmware_sim.models.base import DeviceModel

STEADY_A = 1.1  # an LED lamp head at 24 V
STANDBY_A = 0.02  # the controller's own draw, seen by the transducer when the lamp is dark
PATTERNS = range(4)
FALLBACK_PATTERN = 2


@dataclass
class WarningSignModel(DeviceModel):
    """The sign's state; writes come from the Modbus server (``firmware_sim.servers``)."""

    watchdog_s: float = 60.0
    float_wet: Callable[[float], bool] = field(default=lambda t: False, repr=False)
    lamp_fails_at: float | None = None
    lamp: bool = False
    siren: bool = False
    pattern: int = 0
    heartbeat_at: float | None = None  # last heartbeat write; None: watchdog not armed
    heartbeats: int = 0
    heartbeat_value: int = 0  # read back as written

    def write_coil(self, address: int, on: bool) -> None:
        if address == 0:
            self.lamp = on
        elif address == 1:
            self.siren = on
        else:
            raise ValueError(f"coil {address} is not an output of the sign")

    def write_holding(self, address: int, value: int, t: float) -> None:
        if address == 0:
            if value not in PATTERNS:
                raise ValueError(f"lamp pattern {value} is not 0-3")
            self.pattern = value
        elif address == 1:
            self.heartbeat_at = t
            self.heartbeats += 1
            self.heartbeat_value = value
        else:
            raise ValueError(f"holding register {address} is read-only")

    def fallback(self, t: float) -> bool:
        """The watchdog has expired: the float switch drives the lamp."""
        if self.watchdog_s <= 0 or self.heartbeat_at is None:
            return False
        return t - self.heartbeat_at >= self.watchdog_s

    def outputs(self, t: float) -> tuple[bool, bool, int]:
        """(lamp lit by the controller, siren sounding, pattern) at ``t``."""
        if self.fallback(t):
            wet = self.float_wet(t)
            return wet, False, FALLBACK_PATTERN
        return self.lamp, self.siren, self.pattern

    def lamp_current(self, t: float) -> float:
        lamp, _siren, pattern = self.outputs(t)
        if not lamp or (self.lamp_fails_at is not None and t >= self.lamp_fails_at):
            return STANDBY_A
        return STEADY_A if pattern == 0 else STEADY_A / 2

    def status_bits(self, t: float) -> int:
        return int(self.fallback(t)) | int(self.float_wet(t)) << 1

    def sample(self, t: float) -> dict[str, object]:
        """What a gateway reads: the coils as written, the current as measured."""
        return {
            "lamp_on": self.lamp,
            "siren_on": self.siren,
            "lamp_pattern": self.pattern,
            "lamp_current": round(self.lamp_current(t), 3),
            "fallback": self.fallback(t),
        }
