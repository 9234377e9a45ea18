"""Road flood (冠水) sensor at an underpass or low point, with a rain gauge.

Ponded depth ``D`` (mm) is a storage that fills when rain exceeds the drain's design
intensity and drains when it falls below::

    dD/dt = C · (rain − R_d)        (mm/h, D ≥ 0)

``C`` (6-14) concentrates the surrounding catchment's excess rain into the dip, ``R_d``
(25-40 mm/h) is what the drain and the underpass pump can take. Integrated on a 10-s
grid. Depth is reported in whole mm (int16), the gauge in 0.1 mm/h.

Flood stages (contract C): 注意 caution 10 cm, 警戒 warning 20 cm, 危険 danger 30 cm,
overridable per site.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from firmware_sim.models.base import DeviceModel
from firmware_sim.weather import Weather

DT = 10.0
DEFAULT_STAGES_CM = {"caution": 10.0, "warning": 20.0, "danger": 30.0}


@dataclass
class FloodSensorModel(DeviceModel):
    weather: Weather | None = None
    t0: float = 0.0
    concentration: float = 10.0
    drain_mmh: float = 30.0
    rain_factor: float = 1.0
    stages_cm: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_STAGES_CM))
    _t: float = field(default=0.0, repr=False)
    _depth_mm: float = field(default=0.0, repr=False)
    _started: bool = field(default=False, repr=False)

    def rain(self, t: float) -> float:
        return self.weather.rain(t, self.rain_factor) if self.weather is not None else 0.0

    def reset(self) -> None:
        self._t, self._depth_mm, self._started = self.t0, 0.0, True

    def depth_mm(self, t: float) -> float:
        if not self._started:
            self.reset()
        while self._t + DT <= t:
            if self._depth_mm == 0.0 and self.weather is not None:
                dry = self.weather.dry_until(self._t)
                if dry > self._t:  # nothing happens until the next storm: skip ahead
                    target = min(t, dry)
                    steps = int((target - self._t) // DT)
                    if steps > 0:
                        self._t += steps * DT
                        continue
            rate = self.concentration * (self.rain(self._t) - self.drain_mmh)
            self._depth_mm = max(0.0, self._depth_mm + rate * DT / 3600.0)
            self._t += DT
        return self._depth_mm

    def sample(self, t: float) -> dict[str, Any]:
        depth_mm = round(self.depth_mm(t))
        rain = round(self.rain(t), 1)
        return {"depth": depth_mm / 10.0, "rain_intensity": rain}
