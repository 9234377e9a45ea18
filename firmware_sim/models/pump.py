"""Sewer manhole pump station: wet well, two alternating pumps, rain-driven inflow.

Inflow = dry-weather sewage (the water-demand curve, one hour later) + rain-derived
inflow and infiltration (city rain through a 30-minute first-order lag). The level
controller starts the lead pump at ``start_level``, brings in the second pump at
``assist_level``, stops both at ``stop_level`` and swaps the lead pump each cycle
(duty alternation, so the run hours stay even). The well is integrated on a fixed
5-second grid; between grid points the state is held.

Faults: ``fail_to_start`` (from a time, for the given pumps): a start command leaves the
pump stopped, sets its fault bit and fault code; if both pumps are faulted the level
climbs to the high-level alarm and on toward overflow. ``short_cycle``: the stop-level
float sticks just below the start level, so the pumps start and stop every minute.

Fault codes (register 7): 0 none, 11 pump 1 failed to start, 12 pump 2 failed to start,
19 both pumps failed to start, 21 high wet-well level, 31 power failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from firmware_sim import noise
from firmware_sim.models.base import DeviceModel, Window
from firmware_sim.models.water import pattern
from firmware_sim.timebase import HOUR_S, is_weekend, local_hour
from firmware_sim.weather import Weather

DT = 5.0
RAIN_LAG_S = 1800.0

FAULT_NONE = 0
FAULT_P1_START = 11
FAULT_P2_START = 12
FAULT_BOTH_START = 19
FAULT_HIGH_LEVEL = 21
FAULT_POWER = 31


@dataclass
class PumpState:
    t: float
    level: float
    running: list[bool]
    lead: int = 0
    run_s: list[float] = field(default_factory=lambda: [0.0, 0.0])
    starts: list[int] = field(default_factory=lambda: [0, 0])
    fault: list[bool] = field(default_factory=lambda: [False, False])
    rain_lag: float = 0.0


@dataclass
class PumpStationModel(DeviceModel):
    weather: Weather | None = None
    t0: float = 0.0
    area_m2: float = 2.5
    start_level: float = 1.2
    stop_level: float = 0.4
    assist_level: float = 1.6
    high_level: float = 2.0
    overflow_level: float = 3.5
    pump_m3s: float = 0.012
    dwf_m3s: float = 0.004  # mean dry-weather inflow
    rain_m3s_per_mmh: float = 0.0003
    rain_factor: float = 1.0
    rated_a: tuple[float, float] = (9.0, 9.2)
    run_hours0: tuple[float, float] = (5000.0, 5000.0)
    starts0: tuple[int, int] = (20000, 20000)
    fail_to_start: list[tuple[Window, tuple[int, ...]]] = field(default_factory=list)
    short_cycle: Window | None = None
    power_fail: Window | None = None
    _s: PumpState | None = field(default=None, repr=False)
    _dwf_slot: int = field(default=-1, repr=False)
    _dwf: float = field(default=0.0, repr=False)

    def reset(self) -> None:
        self._s = PumpState(
            t=self.t0, level=(self.start_level + self.stop_level) / 2, running=[False, False]
        )

    def dry_weather_flow(self, t: float) -> float:
        """Sewage inflow without rain, m³/s; held per minute (it changes slowly)."""
        slot = int(t // 60.0)
        if slot != self._dwf_slot:
            tm = slot * 60.0
            dwf = self.dwf_m3s * pattern((local_hour(tm) - 1.0) % 24.0, is_weekend(tm))
            self._dwf = dwf * (1.0 + 0.1 * noise.smooth(self.key, tm, 1200.0))
            self._dwf_slot = slot
        return self._dwf

    def inflow(self, t: float, st: PumpState) -> float:
        return max(0.0, self.dry_weather_flow(t) + self.rain_m3s_per_mmh * st.rain_lag)

    def _failing(self, t: float, pump: int) -> bool:
        return any(w.covers(t) and pump in pumps for w, pumps in self.fail_to_start)

    def _stop_level(self, t: float) -> float:
        if self.short_cycle is not None and self.short_cycle.covers(t):
            return self.start_level - 0.05
        return self.stop_level

    def _start(self, st: PumpState, pump: int, t: float) -> bool:
        if st.fault[pump]:
            return False
        if self._failing(t, pump):
            st.fault[pump] = True  # latched until reset by a technician
            return False
        if not st.running[pump]:
            st.running[pump] = True
            st.starts[pump] += 1
        return True

    def _step(self, st: PumpState) -> None:
        t = st.t
        w = self.weather
        rain = w.rain(t, self.rain_factor) if w is not None else 0.0
        st.rain_lag += (rain - st.rain_lag) * (1.0 - math.exp(-DT / RAIN_LAG_S))
        powered = not (self.power_fail is not None and self.power_fail.covers(t))
        if not powered:
            st.running = [False, False]
        else:
            n_running = sum(st.running)
            if st.level >= self.start_level and n_running == 0:
                first = st.lead
                if not self._start(st, first, t):
                    self._start(st, 1 - first, t)
                st.lead = 1 - st.lead
            elif st.level >= self.assist_level and n_running == 1:
                self._start(st, 0 if not st.running[0] else 1, t)
            if st.level <= self._stop_level(t):
                st.running = [False, False]
        out = 0.0
        for p in (0, 1):
            if st.running[p]:
                out += self.pump_m3s
                st.run_s[p] += DT
        st.level += (self.inflow(t, st) - out) * DT / self.area_m2
        st.level = min(self.overflow_level, max(0.05, st.level))
        st.t = t + DT

    def state(self, t: float) -> PumpState:
        if self._s is None:
            self.reset()
        st = self._s
        assert st is not None
        while st.t + DT <= t:
            self._step(st)
        return st

    def sample(self, t: float) -> dict[str, Any]:
        st = self.state(t)
        cur = []
        for p in (0, 1):
            if st.running[p]:
                a = self.rated_a[p] * (1.0 + 0.02 * noise.normal(self.key + 11 + p, int(t)))
                cur.append(round(a, 1))
            else:
                cur.append(0.0)
        return {
            "level": round(st.level, 2),
            "pump1_running": st.running[0],
            "pump2_running": st.running[1],
            "pump1_current": cur[0],
            "pump2_current": cur[1],
            "pump1_run_hours": round(self.run_hours0[0] + st.run_s[0] / HOUR_S, 2),
            "pump2_run_hours": round(self.run_hours0[1] + st.run_s[1] / HOUR_S, 2),
            "fault_code": self.fault_code(t, st),
        }

    def fault_code(self, t: float, st: PumpState) -> int:
        if self.power_fail is not None and self.power_fail.covers(t):
            return FAULT_POWER
        if st.fault[0] and st.fault[1]:
            return FAULT_BOTH_START
        if st.fault[0]:
            return FAULT_P1_START
        if st.fault[1]:
            return FAULT_P2_START
        if st.level >= self.high_level:
            return FAULT_HIGH_LEVEL
        return FAULT_NONE

    def status_bits(self, t: float) -> int:
        """Packed status word: b0 p1 running, b1 p2 running, b2 p1 fault, b3 p2 fault,
        b4 high level, b5 power fail."""
        st = self.state(t)
        bits = int(st.running[0]) | int(st.running[1]) << 1
        bits |= int(st.fault[0]) << 2 | int(st.fault[1]) << 3
        bits |= int(st.level >= self.high_level) << 4
        bits |= int(self.power_fail is not None and self.power_fail.covers(t)) << 5
        return bits
