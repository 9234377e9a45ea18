"""Sewer manhole pump stations: fail to start, high level, short cycling, current, faults,
run-time imbalance.

The PLC reports on change, so a reading may carry only some fields; each station keeps
the last known value of every field.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from cloud.detect.base import Detection, DeviceContext, restore_slots
from cloud.detect.config import PumpConfig
from cloud.detect.flags import Flags
from schemas.alert import Severity
from schemas.wire import Reading

# Seconds between run-hour samples kept for the imbalance window.
RUNTIME_SAMPLE_S = 600.0


class _Station:
    __slots__ = (
        "bad_current",
        "code",
        "current",
        "high",
        "hours",
        "level",
        "rising",
        "run_since",
        "running",
        "stamps",
        "start_level",
        "starts",
    )

    def __init__(self) -> None:
        self.level: float | None = None
        self.high = 0.0
        self.code = 0
        self.running = [False, False]
        self.current: list[float | None] = [None, None]
        self.bad_current = [0, 0]
        self.starts: deque[float] = deque()  # end times of short runs
        self.run_since: list[float | None] = [None, None]
        self.start_level: float | None = None  # learned: level at which pumps start
        self.rising = 0
        self.hours: deque[tuple[float, float, float]] = deque()
        self.stamps: dict[str, float] = {}  # field -> time of its newest value

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        restore_slots(self, state, stamps={})


def _site_float(site: Mapping[str, Any], *keys: str) -> float | None:
    for k in keys:
        v = site.get(k)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
    return None


def _fresh(s: _Station, v: Any, t: float) -> Any:
    """The reading without the fields the station already has newer values of (its
    batch was applied late, after the detector tier stopped waiting for it): a late
    "pump off" or an old fault code would otherwise overwrite the state of now and raise
    a fail-to-start or a fault that is over. None when nothing in it is new."""
    given = {f: x for f, x in v if x is not None}
    stale = [f for f in given if t < s.stamps.get(f, float("-inf"))]
    for f in given:
        if f not in stale:
            s.stamps[f] = t
    if not stale:
        return v
    if len(stale) == len(given):
        return None
    return v.model_copy(update=dict.fromkeys(stale))


class PumpDetector:
    name = "pump"

    def __init__(self, config: PumpConfig, sites: Mapping[str, Mapping[str, Any]]) -> None:
        self.cfg = config
        self.sites = sites
        self.flags = Flags(self.name)
        self.stations: dict[str, _Station] = {}

    def feed(self, readings: Sequence[Reading], devices: DeviceContext) -> list[Detection]:
        out: list[Detection] = []
        for r in readings:
            self.feed_one(out, r.device_id, r.ts, r.values)
        return out

    def feed_one(self, out: list[Detection], dev: str, ts: datetime, v: Any) -> None:
        c = self.cfg
        s = self.stations.get(dev)
        site = self.sites.get(dev, {})
        if s is None:
            s = self.stations[dev] = _Station()
            s.start_level = _site_float(site, "start_level_m", "pump_start_m", "start_m")
            s.high = _site_float(site, "high_level_m", "alarm_level_m") or c.level_high_m
        t = ts.timestamp()
        v = _fresh(s, v, t)
        if v is None:
            return
        prev_level = s.level
        for i, (run, cur) in enumerate(
            ((v.pump1_running, v.pump1_current), (v.pump2_running, v.pump2_current))
        ):
            if run is not None:
                if run and not s.running[i]:
                    s.run_since[i] = t
                    if s.level is not None and site.get("start_level_m") is None:
                        s.start_level = s.level
                elif not run and s.running[i]:
                    since = s.run_since[i]
                    if since is not None and t - since < c.short_run_s:
                        s.starts.append(t)
                s.running[i] = run
            if cur is not None:
                s.current[i] = cur
        if v.level is not None:
            s.level = v.level
        if v.fault_code is not None:
            code = s.code = v.fault_code
            self.flags.set(
                out,
                dev,
                "pump_fault",
                ts,
                code != 0,
                severity=Severity.SEVERE,
                title="Pump controller fault",
                message=f"fault code {code}",
                value=float(code),
                extra={"code": code},
            )
        running = s.running[0] or s.running[1]
        if s.level is not None:
            self._level(out, s, dev, ts, site, prev_level, running)
        self._short_cycle(out, s, dev, ts, t)
        self._current(out, s, dev, ts)
        if v.pump1_run_hours is not None and v.pump2_run_hours is not None:
            self._imbalance(out, s, dev, ts, t, v.pump1_run_hours, v.pump2_run_hours)

    def _level(
        self,
        out: list[Detection],
        s: _Station,
        dev: str,
        ts: datetime,
        site: Mapping[str, Any],
        prev: float | None,
        running: bool,
    ) -> None:
        c = self.cfg
        level = s.level
        assert level is not None
        high = s.high
        on = self.flags.active(dev, "wet_well_high")
        is_high = level > high or (on and level > high - c.level_hysteresis_m)
        if is_high != on:
            self.flags.set(
                out,
                dev,
                "wet_well_high",
                ts,
                is_high,
                severity=Severity.SEVERE,
                title="Wet-well level high",
                message=f"level {level:.2f} m (alarm {high:.2f} m)",
                value=level,
            )
        start = s.start_level if s.start_level is not None else c.fail_start_level_m
        if running:
            s.rising = 0
            failing = False
        else:
            if prev is not None and level > prev:
                s.rising += 1
            elif prev is not None and level < prev:
                s.rising = 0
            failing = level >= start + c.fail_rise_m and s.rising >= c.fail_samples
            if self.flags.active(dev, "pump_fail_to_start") and level >= start:
                failing = True
        # the PLC saw the start command fail: no need to wait for the level
        failing = failing or s.code in c.fail_start_codes
        if failing != self.flags.active(dev, "pump_fail_to_start"):
            self.flags.set(
                out,
                dev,
                "pump_fail_to_start",
                ts,
                failing,
                severity=Severity.SEVERE,
                title="Pump failed to start",
                message=f"level {level:.2f} m (start {start:.2f} m), no pump running, "
                f"fault code {s.code}",
                value=level,
            )

    def _short_cycle(
        self, out: list[Detection], s: _Station, dev: str, ts: datetime, t: float
    ) -> None:
        c = self.cfg
        while s.starts and s.starts[0] < t - c.short_cycle_window_s:
            s.starts.popleft()
        n = len(s.starts)
        on = self.flags.active(dev, "pump_short_cycle")
        cycling = n >= c.short_cycle_starts or (on and n > c.short_cycle_starts // 2)
        if cycling != on:
            self.flags.set(
                out,
                dev,
                "pump_short_cycle",
                ts,
                cycling,
                severity=Severity.MODERATE,
                title="Pumps short-cycling",
                message=f"{n} runs shorter than {c.short_run_s:.0f} s in "
                f"{c.short_cycle_window_s / 60:.0f} min",
                value=float(n),
            )

    def _current(self, out: list[Detection], s: _Station, dev: str, ts: datetime) -> None:
        c = self.cfg
        worst: tuple[int, str, float] | None = None
        for i in (0, 1):
            cur = s.current[i]
            if cur is None:
                continue
            if s.running[i]:
                mode = "under" if cur < c.current_min_a else "over" if cur > c.current_max_a else ""
            else:
                mode = "idle_draw" if cur > c.current_idle_max_a else ""
            s.bad_current[i] = s.bad_current[i] + 1 if mode else 0
            if s.bad_current[i] >= c.current_samples and worst is None:
                worst = (i + 1, mode, cur)
        on = worst is not None
        if on or self.flags.active(dev, "pump_current"):
            pump, mode, cur = worst if worst else (0, "", 0.0)
            self.flags.set(
                out,
                dev,
                "pump_current",
                ts,
                on,
                severity=Severity.MODERATE,
                title=f"Pump {pump} current {mode}" if on else "Pump currents normal",
                message=f"pump {pump} draws {cur:.1f} A ({mode})" if on else "",
                value=cur if on else None,
                extra={"pump": pump, "mode": mode} if on else {},
            )

    def _imbalance(
        self,
        out: list[Detection],
        s: _Station,
        dev: str,
        ts: datetime,
        t: float,
        h1: float,
        h2: float,
    ) -> None:
        c = self.cfg
        if not s.hours or t - s.hours[-1][0] >= RUNTIME_SAMPLE_S:
            s.hours.append((t, h1, h2))
        while len(s.hours) > 2 and s.hours[0][0] < t - c.imbalance_window_h * 3600.0:
            s.hours.popleft()
        _, a1, a2 = s.hours[0]
        d1, d2 = h1 - a1, h2 - a2
        hi, lo = max(d1, d2), min(d1, d2)
        on = self.flags.active(dev, "pump_runtime_imbalance")
        ratio = hi / max(lo, 1e-6)
        bad = hi >= c.imbalance_min_hours and (
            ratio >= c.imbalance_ratio or (on and ratio >= 1 + (c.imbalance_ratio - 1) / 2)
        )
        if bad != on:
            self.flags.set(
                out,
                dev,
                "pump_runtime_imbalance",
                ts,
                bad,
                severity=Severity.MINOR,
                title="Pump run times unbalanced",
                message=f"run hours in window: pump1 {d1:.1f} h, pump2 {d2:.1f} h",
                value=round(ratio, 2),
                extra={"pump1_h": round(d1, 2), "pump2_h": round(d2, 2)},
            )
