"""Emergency-call base unit in an elderly resident's home.

Messages (contract A): a heartbeat every ``hb_interval_s`` (phase spread per unit) with
room temperature, humidity and battery; ``BTN`` when the pendant button is pressed;
``CAN`` when the resident cancels.

Room climate: a free-running house follows the outdoor air with a 3-hour lag and damped
swing, plus internal gains; a heat wave soaks into the building over about half a day.
Homes with air conditioning hold 26-27 °C when the free-running room would pass 28 °C;
in winter the heating keeps the room at ~20 °C from 06:00 to 23:00. Room humidity comes
from the outdoor vapour pressure at the room temperature (moisture is conserved, so a
warmer room is relatively drier).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from firmware_sim import noise
from firmware_sim.models.base import DeviceModel
from firmware_sim.timebase import HOUR_S, local_hour
from firmware_sim.wbgt import indoor_wbgt
from firmware_sim.weather import MONTHLY_MEAN_C, Weather, saturation_hpa, vapour_pressure_hpa

INDOOR_MOISTURE_HPA = 3.0


@dataclass(frozen=True)
class Press:
    at: float
    cancel_at: float | None = None


@dataclass(frozen=True)
class Message:
    t: float
    type: str  # HB | BTN | CAN
    values: dict[str, Any]


@dataclass
class CallUnitModel(DeviceModel):
    weather: Weather | None = None
    unit_id: int = 1
    t0: float = 0.0
    hb_interval_s: float = 1800.0
    hb_phase_s: float = 0.0
    has_ac: bool = False
    offset_c: float = 0.0
    battery0: float = 95.0
    presses: list[Press] = field(default_factory=list)
    # a fixed room climate (°C, RH %) in place of the weather model; tests set it to drive
    # a unit's heartbeats into (or out of) a heat stage without simulating the weather
    indoor: tuple[float, float] | None = None

    def room(self, t: float) -> tuple[float, float]:
        """(temperature °C, RH %) in the room: ``indoor`` when set, else from the weather."""
        if self.indoor is not None:
            return self.indoor
        w = self.weather
        assert w is not None
        m = MONTHLY_MEAN_C[w.month - 1]
        lagged = w.temp_out(t - 3 * HOUR_S)
        heat = sum(h.at(t - 12 * HOUR_S) for h in w.heat_waves)
        free = 0.55 * m + 0.45 * lagged + 0.45 * heat + 1.5 + self.offset_c
        temp = free
        # cooking, breathing and laundry add moisture indoors
        e = vapour_pressure_hpa(w.temp_out(t), w.rh_out(t)) + INDOOR_MOISTURE_HPA
        if self.has_ac and free > 28.0:
            temp = 26.5 + 0.4 * noise.smooth(self.key, t, 3600.0)
            e = min(e, 0.55 * saturation_hpa(temp))  # the air conditioner dehumidifies
        h = local_hour(t)
        if free < 18.0:  # heating season: 20 °C by day, cooling slowly overnight
            heated = 20.0 + 0.6 * noise.smooth(self.key + 1, t, 3600.0)
            since_off = (h - 23.0) % 24.0
            temp = heated if since_off >= 7.0 else max(free, heated - 1.2 * since_off)
        temp += 0.15 * noise.normal(self.key + 2, int(t))
        rh = min(95.0, max(15.0, 100.0 * e / saturation_hpa(temp)))
        return temp, rh

    def wbgt_upper_bound(self, a: float, b: float) -> float:
        """An upper bound of the room's WBGT over ``[a, b]`` (to skip hopeless scans)."""
        w = self.weather
        assert w is not None
        m = MONTHLY_MEAN_C[w.month - 1]
        heat = max(
            (h.extra_c for h in w.heat_waves if h.start < b and h.start + h.duration > a),
            default=0.0,
        )
        out_max = m + 3.5 + heat + 1.2 + 2.0
        free = 0.55 * m + 0.45 * out_max + 0.45 * heat + 1.5 + self.offset_c
        temp = max(free, 21.1) + 0.8
        return indoor_wbgt(temp, 95.0)

    def wbgt(self, t: float) -> float:
        temp, rh = self.room(t)
        return indoor_wbgt(round(temp, 1), round(rh, 1))

    def battery(self, t: float) -> int:
        return max(0, min(100, round(self.battery0 - 0.2 * (t - self.t0) / 86_400.0)))

    def heartbeat_times(self, a: float, b: float) -> list[float]:
        """Heartbeat instants in ``[a, b)``."""
        first = self.t0 + self.hb_phase_s
        k = max(0, int((a - first) // self.hb_interval_s))
        out = []
        t = first + k * self.hb_interval_s
        while t < b:
            if t >= a:
                out.append(t)
            t += self.hb_interval_s
        return out

    def messages(self, a: float, b: float) -> list[Message]:
        """Every message the unit originates in ``[a, b)`` (no retries), in time order."""
        out = []
        for t in self.heartbeat_times(a, b):
            if self.online(t):
                temp, rh = self.room(t)
                vals = {"temperature": round(temp, 1), "humidity": round(rh, 1)}
                vals["battery"] = float(self.battery(t))
                out.append(Message(t, "HB", vals))
        for p in self.presses:
            if a <= p.at < b:
                temp, rh = self.room(p.at)
                out.append(
                    Message(p.at, "BTN", {"temperature": round(temp, 1), "humidity": round(rh, 1)})
                )
            if p.cancel_at is not None and a <= p.cancel_at < b:
                out.append(Message(p.cancel_at, "CAN", {}))
        out.sort(key=lambda m: (m.t, m.type))
        return out

    def sample(self, t: float) -> dict[str, Any]:
        temp, rh = self.room(t)
        return {
            "temperature": round(temp, 1),
            "humidity": round(rh, 1),
            "battery": float(self.battery(t)),
        }
