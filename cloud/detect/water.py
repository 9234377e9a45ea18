"""Water distribution blocks (DMA inlet meters): leak, burst, pressure, stuck, range, profile.

All state is per block and updated per reading; nothing reads the store. The daily
profile keeps, per block, a (days x slots) numpy array of slot means and recomputes the
slot medians/MADs for all slots at once when a day closes.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import numpy as np

from cloud.detect.base import Detection, DeviceContext, restore_slots
from cloud.detect.config import WaterConfig
from cloud.detect.flags import Flags
from cloud.detect.leak import DAY_S, MAD_TO_SIGMA, LeakTracker, LeakVerdict
from cloud.detect.leak_pump import PumpCycleTracker
from schemas.alert import Severity
from schemas.devices import WaterBlockValues
from schemas.wire import Reading


class _Profile:
    """Learned daily flow profile: robust z-score of each sample against its time slot."""

    __slots__ = ("_acc", "_cnt", "_day", "days", "hist", "mad", "med", "streak")

    def __init__(self, bins: int, history: int) -> None:
        self.hist = np.full((history, bins), np.nan)
        # per-sample work touches plain lists (numpy scalar indexing costs more than it saves)
        self.med: list[float] = [math.nan] * bins
        self.mad: list[float] = [math.nan] * bins
        self._acc = [0.0] * bins
        self._cnt = [0] * bins
        self._day: int | None = None
        self.days = 0
        self.streak = 0

    def add(self, lt: float, flow: float, min_days: int) -> float | None:
        """Record a sample (local epoch s); return its robust z once the profile is learned."""
        bins = len(self.med)
        day = int(lt // DAY_S)
        if self._day is None:
            self._day = day
        elif day != self._day:
            self._roll(day)
        slot = int((lt - day * DAY_S) / DAY_S * bins)
        self._acc[slot] += flow
        self._cnt[slot] += 1
        if self.days < min_days:
            return None
        med, mad = self.med[slot], self.mad[slot]
        if not math.isfinite(med):
            return None
        # floor: a near-constant slot must not turn noise into huge z-scores
        scale = max(MAD_TO_SIGMA * mad, 0.05 * abs(med), 1e-3)
        return (flow - med) / scale

    def _roll(self, day: int) -> None:
        acc, cnt = np.array(self._acc), np.array(self._cnt, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(cnt > 0, acc / np.maximum(cnt, 1), np.nan)
        self.hist = np.roll(self.hist, -1, axis=0)
        self.hist[-1] = means
        self.days += 1
        bins = len(self._acc)
        self._acc = [0.0] * bins
        self._cnt = [0] * bins
        self._day = day
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slots stay NaN
            med = np.nanmedian(self.hist, axis=0)
            self.med = med.tolist()
            self.mad = np.nanmedian(np.abs(self.hist - med), axis=0).tolist()


_STATISTIC_NAMES = {
    "night_median": "median night flow",
    "night_min": "minimum night flow",
    "daily_mean": "mean daily flow",
    "day_step": "mean daily flow against the week before",
    # the estimate pools the days and nights (each a little up); the flow shown is the day's
    "days_nights_step": "days and nights together against the week before: mean daily flow",
    "pump_cycle": "tank-zone demand over the last pump cycle",
}


def _leak_message(v: LeakVerdict, statistic: str) -> str:
    if v.event == "clear":
        return "Flow back near the baseline"
    head = {"grown": "Leak has grown: ", "reduced": "Leak partly repaired: "}.get(v.event or "", "")
    expected = f", expected {v.expected:.1f}" if v.expected is not None else ""
    name = _STATISTIC_NAMES.get(statistic, statistic)
    return f"{head}{name} {v.value:.1f} m³/h{expected}; estimated leak {v.excess:.1f} m³/h"


class _Block:
    __slots__ = (
        "burst_calm",
        "burst_ref",
        "flow_level",
        "last_flow",
        "last_pressure",
        "leak",
        "newest",
        "prev_flows",
        "prev_pressures",
        "profile",
        "stuck",
    )

    def __init__(self, cfg: WaterConfig, dev: str) -> None:
        leak_cfg = cfg.leak_by_block.get(dev, cfg.leak)
        # a tank zone's pump is judged per fill cycle; every other block per night
        self.leak: LeakTracker | PumpCycleTracker = (
            PumpCycleTracker(leak_cfg)
            if leak_cfg.statistic == "pump_cycle"
            else LeakTracker(leak_cfg)
        )
        self.profile = _Profile(cfg.profile_bins, cfg.profile_history_days)
        self.prev_flows: deque[float] = deque(maxlen=3)
        self.prev_pressures: deque[float] = deque(maxlen=3)
        self.flow_level: float | None = None
        self.last_flow: float | None = None
        self.last_pressure: float | None = None
        self.burst_ref: float | None = None
        self.burst_calm = 0
        self.stuck: dict[str, list[float]] = {}  # field -> [last value, repeats]
        self.newest = float("-inf")  # time of the newest reading taken

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        restore_slots(self, state, newest=float("-inf"))


class WaterDetector:
    """Every water-block detector, per block, on the reading stream."""

    name = "water"

    def __init__(self, config: WaterConfig) -> None:
        self.cfg = config
        self.flags = Flags(self.name)
        self.blocks: dict[str, _Block] = {}

    def feed(self, readings: Sequence[Reading], devices: DeviceContext) -> list[Detection]:
        out: list[Detection] = []
        for r in readings:
            # fed water_block readings only (its detector part routes them); a Reading's
            # values model is per kind at runtime, so the type checker sees only Values
            v = cast(WaterBlockValues, r.values)
            self.feed_one(out, r.device_id, r.ts, v.flow, v.pressure)
        return out

    def feed_one(
        self,
        out: list[Detection],
        dev: str,
        ts: datetime,
        flow: float | None,
        pressure: float | None,
    ) -> None:
        c = self.cfg
        b = self.blocks.get(dev)
        if b is None:
            b = self.blocks[dev] = _Block(c, dev)
        t = ts.timestamp()
        if t < b.newest:
            # a late batch (applied after the detector tier stopped waiting for it): one
            # sample is not worth undoing the stream state for (an older day would close
            # the current day's night and mean; an older, lower flow before the current
            # one would look like a burst's jump)
            return
        b.newest = t
        bad = []
        if flow is not None and not c.flow_min <= flow <= c.flow_max:
            bad.append(f"flow={flow}")
            flow = None
        if pressure is not None and not c.pressure_min <= pressure <= c.pressure_max:
            bad.append(f"pressure={pressure}")
            pressure = None
        if bad or self.flags.active(dev, "out_of_range"):
            self.flags.set(
                out,
                dev,
                "out_of_range",
                ts,
                bool(bad),
                severity=Severity.MINOR,
                title="Implausible water-block value",
                message=", ".join(bad),
            )
        if flow is not None:
            self._stuck(out, b, dev, ts, "flow", flow)
        if pressure is not None:
            self._stuck(out, b, dev, ts, "pressure", pressure)
            self._pressure(out, dev, ts, pressure)
        self._burst(out, b, dev, ts, flow, pressure)
        if self.flags.active(dev, "burst"):
            # a burst's flow is its own alarm: the night it falls in says nothing of leaks
            b.leak.spoil()
        if flow is not None:
            v = b.leak.add(t, flow)
            if v is not None and v.event is not None:
                on = v.event != "clear"
                self.flags.set(
                    out,
                    dev,
                    "leak",
                    ts,
                    on,
                    severity=Severity.MODERATE,
                    title="Night flow above the block's baseline (leak)",
                    message=_leak_message(v, v.statistic or b.leak.cfg.statistic),
                    value=round(v.excess, 3),
                    extra={
                        "mode": v.mode,
                        "event": v.event,
                        "night_flow": round(v.value, 3),
                        "statistic": v.statistic or b.leak.cfg.statistic,
                    },
                    force=on,
                )
            if isinstance(b.leak, PumpCycleTracker):
                return  # an on/off pump has no daily demand profile to compare against
            z = b.profile.add(t + c.leak.utc_offset_h * 3600.0, flow, c.profile_min_days)
            if z is not None:
                b.profile.streak = b.profile.streak + 1 if abs(z) > c.profile_z else 0
                on = b.profile.streak >= c.profile_consecutive
                if on or (abs(z) < c.profile_z / 2 and self.flags.active(dev, "profile_anomaly")):
                    self.flags.set(
                        out,
                        dev,
                        "profile_anomaly",
                        ts,
                        on,
                        severity=Severity.MINOR,
                        title="Flow unlike this block's usual day",
                        message=f"robust z={z:.1f} against the learned daily profile",
                        value=round(z, 2),
                    )

    def _stuck(
        self, out: list[Detection], b: _Block, dev: str, ts: datetime, field: str, x: float
    ) -> None:
        c = self.cfg
        st = b.stuck.get(field)
        if st is None:
            b.stuck[field] = [x, 1]
            return
        if abs(x - st[0]) <= c.stuck_tolerance:
            st[1] += 1
            if st[1] == c.stuck_samples:
                self.flags.set(
                    out,
                    dev,
                    "stuck_sensor",
                    ts,
                    True,
                    severity=Severity.MINOR,
                    title="Sensor flat-lined",
                    message=f"{field} stuck at {x} for {int(st[1])} samples",
                    value=x,
                    extra={"field": field},
                )
        else:
            was = st[1] >= c.stuck_samples
            st[0], st[1] = x, 1
            if was and not any(s[1] >= c.stuck_samples for f, s in b.stuck.items() if f != field):
                self.flags.set(out, dev, "stuck_sensor", ts, False, title="Sensor moving again")

    def _pressure(self, out: list[Detection], dev: str, ts: datetime, p: float) -> None:
        c = self.cfg
        h = c.pressure_hysteresis
        low_on = self.flags.active(dev, "pressure_low")
        low = p < c.pressure_low or (low_on and p < c.pressure_low + h)
        if low != low_on:
            self.flags.set(
                out,
                dev,
                "pressure_low",
                ts,
                low,
                severity=Severity.SEVERE,
                title="Low supply pressure",
                message=f"pressure {p:.3f} MPa (limit {c.pressure_low})",
                value=p,
            )
        high_on = self.flags.active(dev, "pressure_high")
        high = p > c.pressure_high or (high_on and p > c.pressure_high - h)
        if high != high_on:
            self.flags.set(
                out,
                dev,
                "pressure_high",
                ts,
                high,
                severity=Severity.MODERATE,
                title="High supply pressure",
                message=f"pressure {p:.3f} MPa (limit {c.pressure_high})",
                value=p,
            )

    def _burst(
        self,
        out: list[Detection],
        b: _Block,
        dev: str,
        ts: datetime,
        flow: float | None,
        pressure: float | None,
    ) -> None:
        c = self.cfg
        if pressure is not None:
            b.last_pressure = pressure
        if flow is None:
            return
        level = b.flow_level
        active = self.flags.active(dev, "burst")
        if active and b.burst_ref is not None:
            # a burst ends when the flow falls back most of the way to before it
            if flow < b.burst_ref + 0.5 * c.burst_flow_rise_frac * max(b.burst_ref, level or 0):
                b.burst_calm += 1
                if b.burst_calm >= c.burst_clear_samples:
                    self.flags.set(out, dev, "burst", ts, False, title="Burst flow ended")
                    b.burst_ref = None
            else:
                b.burst_calm = 0
        elif len(b.prev_flows) == b.prev_flows.maxlen and level is not None:
            ref = sum(b.prev_flows) / len(b.prev_flows)
            rise = flow - ref
            p_ref = sum(b.prev_pressures) / len(b.prev_pressures) if b.prev_pressures else None
            p_now = b.last_pressure
            drop = (p_ref - p_now) if (p_ref is not None and p_now is not None) else 0.0
            if rise > c.burst_flow_rise_frac * max(ref, level) and drop > c.burst_pressure_drop:
                b.burst_ref = ref
                b.burst_calm = 0
                self.flags.set(
                    out,
                    dev,
                    "burst",
                    ts,
                    True,
                    severity=Severity.SEVERE,
                    title="Burst: flow spike with pressure drop",
                    message=f"flow +{rise:.1f} m³/h, pressure -{drop:.3f} MPa",
                    value=round(rise, 3),
                    extra={"flow_rise": round(rise, 3), "pressure_drop": round(drop, 4)},
                )
        if not self.flags.active(dev, "burst"):
            b.prev_flows.append(flow)
            if b.last_pressure is not None:
                b.prev_pressures.append(b.last_pressure)
            a = c.burst_baseline_alpha
            b.flow_level = flow if level is None else level + a * (flow - level)
