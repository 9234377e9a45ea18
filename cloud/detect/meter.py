"""Household water meters (``water_meter``): leak, burst, reverse flow, tamper.

A meter reading is one hour: the forward index at the end of the hour, and on the newest
hour of an uplink the reverse volume and the meter's alarm bits (``cloud/lpwa/codecs``).
The hour's use is the index difference to the hour before; an hour not received breaks
the chain (its use is unknown, so it can prove neither continuous use nor a quiet hour).

- ``meter_leak``: every hour of the last ``leak_hours`` (24) used at least
  ``leak_min_m3_per_h``: a household that uses more water still has quiet hours at
  night, a running cistern or a leaking pipe has none. And the window's lowest
  ``floor_hours`` (2) hours are steady (within ``floor_spread_m3`` or
  ``floor_spread_frac`` of the lowest): a leak is a constant floor under the household's
  use, while a household busy through one night mostly draws irregular amounts (the
  24 h rule alone had precision 0.6-0.7 on the simulator). And that floor persists:
  ``floor_days`` (2) separate windows (ending ``leak_hours`` or more apart, so no hour
  is in both) were steady at the same level (the same spread), with no quiet hour in
  between. A leak draws the same floor night after night; a household busy through a
  night, whose small night draws can be as even as a drip, is quiet again the next. An
  hour not received does not break that persistence (a late uplink is not a quiet
  hour), but every window is 24 received hours in a row. Figures, and what each part
  removes: docs/lpwa.md, "The household leak rule and its scores". The alert's value is
  the floor (the median of the lowest hours), the leak's estimated flow in m³/h. The
  meter's own leak bit raises it too. Clears at the first quiet hour (and the bit off);
  an hour not received neither confirms nor clears it.
- ``meter_burst``: one hour above ``burst_m3_per_h``, or the meter's burst bit.
- ``meter_reverse_flow``: the reverse volume grew by ``reverse_min_m3`` or more since the
  previous value (back-siphonage or a meter fitted backwards); clears when it stops.
- ``meter_tamper``: the meter's tamper bit (magnetic interference, opened case).

A meter silent for days is the generic ``device_offline`` with the period the
``water_meter`` part gives (``silent_s``). Readings of an hour at or before the last
judged hour of that meter (a late uplink, a repeat) are counted in ``late`` and not
judged: detection is per meter in hour order, and the store has them anyway.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median
from typing import Any

from cloud.detect.base import Detection
from cloud.detect.config import MeterConfig
from cloud.detect.flags import Flags
from schemas.alert import Severity

HOUR_S = 3600.0
LEAK, BURST, REVERSE, TAMPER = "meter_leak", "meter_burst", "meter_reverse_flow", "meter_tamper"
ALERTS = (LEAK, BURST, REVERSE, TAMPER)


@dataclass
class _Meter:
    t: float | None = None  # end of the last judged hour, Unix seconds
    index: float | None = None
    reverse: float | None = None
    busy_hours: int = 0  # consecutive hours with use >= leak_min_m3_per_h
    # the last leak_hours known uses; None in checkpoints taken before the floor rule
    recent: deque[float] | None = None
    # steady windows since the last quiet hour: (end of the window, its floor in m³/h);
    # None in checkpoints taken before the persistence rule
    floors: deque[tuple[float, float]] | None = None
    leak_bit: bool = False
    burst_bit: bool = False


@dataclass
class MeterDetector:
    """Per-meter chains of hours and the open conditions (checkpointed with the engine)."""

    cfg: MeterConfig
    flags: Flags = field(default_factory=lambda: Flags("meter"))
    meters: dict[str, _Meter] = field(default_factory=dict)
    late: int = 0

    def feed_one(self, out: list[Detection], device: str, ts: datetime, v: Any) -> None:
        m = self.meters.setdefault(device, _Meter())
        t = ts.timestamp()
        if m.t is not None and t <= m.t:
            self.late += 1
            return
        use = self._hour_use(m, t, v.index)
        if v.leak is not None:
            m.leak_bit = bool(v.leak)
        if v.burst is not None:
            m.burst_bit = bool(v.burst)
        self._leak(out, device, ts, m, use)
        self._burst(out, device, ts, m, use)
        if v.reverse_volume is not None:
            self._reverse(out, device, ts, m, float(v.reverse_volume))
        if v.tamper is not None:
            self.flags.set(
                out,
                device,
                TAMPER,
                ts,
                bool(v.tamper),
                severity=Severity.MODERATE,
                title="Water meter tampered with",
                message="the meter reports tampering or magnetic interference",
            )

    def _hour_use(self, m: _Meter, t: float, index: float | None) -> float | None:
        """This hour's use in m³, or None when the hour before is unknown."""
        use = None
        if index is None:
            return None
        if m.t is not None and m.index is not None and t - m.t == HOUR_S and index >= m.index:
            use = index - m.index
        # a gap or an index going back (meter replaced) starts a new chain
        m.busy_hours = m.busy_hours + 1 if use is not None and self._busy(use) else 0
        if m.recent is None or m.recent.maxlen != self.cfg.leak_hours:
            m.recent = deque(m.recent or (), maxlen=self.cfg.leak_hours)
        if m.busy_hours == 0:
            m.recent.clear()  # only the current busy run is a candidate leak window
        if use is not None and not m.busy_hours:
            m.floors = None  # a quiet hour: whatever floor was seen is gone
        if use is not None and m.busy_hours:
            m.recent.append(use)
        m.t, m.index = t, index
        return use

    def _busy(self, use: float) -> bool:
        # the index counts whole litres: compare with half a litre of slack below the minimum
        return use >= self.cfg.leak_min_m3_per_h - 0.0005

    def _leak(
        self, out: list[Detection], dev: str, ts: datetime, m: _Meter, use: float | None
    ) -> None:
        active = self.flags.active(dev, LEAK)
        if use is None and not m.leak_bit and active:
            return  # an unknown hour neither confirms nor clears a leak found by use
        # an open leak holds through busy hours until a quiet one, also when an hour
        # not received restarted the count of busy hours
        held = active and m.busy_hours > 0
        floor = None
        if m.busy_hours >= self.cfg.leak_hours and not held:
            floor = self._persistent_floor(m, ts.timestamp())
        by_use = held or floor is not None
        on = by_use or m.leak_bit
        if floor is not None:
            why = (
                f"use in each of the last {m.busy_hours} h, a steady floor of "
                f"{floor * 1000:.0f} L/h on {self.cfg.floor_days} separate days"
            )
        elif by_use:
            why = f"use in each of the last {m.busy_hours} h"
        else:
            why = "the meter's leak alarm"
        extra: dict[str, Any] = {"hours": m.busy_hours}
        if floor is not None:
            extra.update(leak_lph=round(floor * 1000, 1), days=self.cfg.floor_days)
        self.flags.set(
            out,
            dev,
            LEAK,
            ts,
            on,
            severity=Severity.MINOR,
            title="Household leak suspected",
            value=floor if floor is not None else use,
            message=f"continuous use: {why}",
            extra=extra,
        )

    def _window_floor(self, m: _Meter) -> float | None:
        """The window's floor (median of its lowest ``floor_hours`` hours) if those lie
        close together, else None."""
        if m.recent is None or not m.recent:
            return None
        low = sorted(m.recent)[: max(1, self.cfg.floor_hours)]
        if low[-1] - low[0] > self._spread(low[0]):
            return None
        return median(low)

    def _spread(self, low: float) -> float:
        # half a litre of slack for the index's whole litres, as in _busy
        return max(self.cfg.floor_spread_m3, self.cfg.floor_spread_frac * low) + 0.0005

    def _persistent_floor(self, m: _Meter, t: float) -> float | None:
        """This window's floor, if steady and seen at the same level in ``floor_days``
        - 1 earlier windows, each ending ``leak_hours`` or more before the next."""
        floor = self._window_floor(m)
        if floor is None:
            return None
        window = self.cfg.leak_hours * HOUR_S
        if m.floors is None:
            m.floors = deque()
        # a day of slack for hours not received (a late uplink restarts the 24 h count)
        while m.floors and m.floors[0][0] < t - (self.cfg.floor_days + 1) * window:
            m.floors.popleft()
        m.floors.append((t, floor))
        need, last = self.cfg.floor_days - 1, t
        for t_i, f_i in reversed(m.floors):
            if need == 0:
                break
            if last - t_i >= window and abs(f_i - floor) <= self._spread(min(f_i, floor)):
                need, last = need - 1, t_i
        return floor if need == 0 else None

    def _burst(
        self, out: list[Detection], dev: str, ts: datetime, m: _Meter, use: float | None
    ) -> None:
        high = use is not None and use >= self.cfg.burst_m3_per_h
        if use is None and not m.burst_bit:
            return  # unknown hour: keep the state
        use_txt = "unknown" if use is None else f"{use:.3f}"
        self.flags.set(
            out,
            dev,
            BURST,
            ts,
            high or m.burst_bit,
            severity=Severity.SEVERE,
            title="Burst suspected behind a household meter",
            value=use,
            message=f"hour's use {use_txt} m³, burst bit {m.burst_bit}",
        )

    def _reverse(self, out: list[Detection], dev: str, ts: datetime, m: _Meter, rev: float) -> None:
        grew = None if m.reverse is None else rev - m.reverse
        m.reverse = rev
        if grew is None:
            return
        on = grew >= self.cfg.reverse_min_m3
        self.flags.set(
            out,
            dev,
            REVERSE,
            ts,
            on,
            severity=Severity.MODERATE,
            title="Reverse flow at a household meter",
            value=grew,
            message=f"reverse volume grew {grew * 1000:.0f} L",
        )
