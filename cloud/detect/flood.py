"""Road flood (冠水) sensors: staged depth thresholds with hysteresis, and rate of rise.

Stages follow the common Japanese three-step wording: 注意 (caution), 警戒 (warning),
危険 (danger). One ``flood_stage`` alert per sensor; its severity and ``extra["stage"]``
change with the stage so residents get one message per stage change. A level dithering
around a threshold only drops a stage once it is ``hysteresis_cm`` below it.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from cloud.detect.base import Detection, DeviceContext, restore_slots
from cloud.detect.config import FloodConfig
from cloud.detect.flags import Flags
from schemas.alert import Severity
from schemas.devices import FloodSensorValues
from schemas.wire import Reading

STAGES = ("caution", "warning", "danger")
STAGES_JA = {"caution": "注意", "warning": "警戒", "danger": "危険"}
SEVERITY = {"caution": Severity.MODERATE, "warning": Severity.SEVERE, "danger": Severity.EXTREME}


def site_stages(site: Mapping[str, Any], default: tuple[float, float, float]) -> tuple[float, ...]:
    """Per-site stage depths in cm: ``stages_cm`` list, or ``caution_cm`` etc., else default."""
    for key in ("stages_cm", "stage_depths_cm", "flood_stages_cm"):
        v = site.get(key)
        if isinstance(v, list | tuple) and len(v) == 3:
            return tuple(float(x) for x in v)
        if isinstance(v, Mapping):
            return tuple(float(v.get(s, d)) for s, d in zip(STAGES, default, strict=True))
    if any(f"{s}_cm" in site for s in STAGES):
        return tuple(float(site.get(f"{s}_cm", d)) for s, d in zip(STAGES, default, strict=True))
    return default


class _Sensor:
    __slots__ = ("last_t", "rising", "samples", "stage", "thresholds")

    def __init__(self, thresholds: tuple[float, ...]) -> None:
        self.thresholds = thresholds
        self.stage = 0  # 0 = below caution, 1..3 = STAGES[i-1]
        self.samples: deque[tuple[float, float]] = deque()
        self.rising = False
        self.last_t = float("-inf")  # the newest reading's time

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        restore_slots(self, state, last_t=float("-inf"))


def _fit(samples: deque[tuple[float, float]], t_now: float) -> tuple[float, float]:
    """Least-squares line through the samples: (slope cm/h, fitted depth at ``t_now``)."""
    n = len(samples)
    sx = sy = sxx = sxy = 0.0
    for t, y in samples:
        x = (t - t_now) / 3600.0
        sx += x
        sy += y
        sxx += x * x
        sxy += x * y
    den = n * sxx - sx * sx
    if den <= 0:
        return 0.0, sy / n
    slope = (n * sxy - sx * sy) / den
    return slope, (sy - slope * sx) / n


class FloodDetector:
    name = "flood"

    def __init__(self, config: FloodConfig, sites: Mapping[str, Mapping[str, Any]]) -> None:
        self.cfg = config
        self.sites = sites
        self.flags = Flags(self.name, public_kinds=frozenset({"flood_stage", "flood_rising"}))
        self.sensors: dict[str, _Sensor] = {}

    def feed(self, readings: Sequence[Reading], devices: DeviceContext) -> list[Detection]:
        out: list[Detection] = []
        for r in readings:
            # fed flood_sensor readings only (its detector part routes them); a Reading's
            # values model is per kind at runtime, so the type checker sees only Values
            depth = cast(FloodSensorValues, r.values).depth
            if depth is not None:
                self.feed_one(out, r.device_id, r.ts, depth)
        return out

    def feed_one(self, out: list[Detection], dev: str, ts: datetime, depth: float) -> None:
        c = self.cfg
        s = self.sensors.get(dev)
        if s is None:
            th = site_stages(self.sites.get(dev, {}), c.stages_cm)
            s = self.sensors[dev] = _Sensor(th)
        if ts.timestamp() < s.last_t:
            self._late(s, ts.timestamp(), depth)
            return
        s.last_t = ts.timestamp()
        th = s.thresholds
        up = sum(1 for x in th if depth >= x)
        down = sum(1 for x in th if depth >= x - c.hysteresis_cm)
        stage = up if up > s.stage else min(s.stage, down)
        if stage != s.stage:
            s.stage = stage
            if stage:
                name = STAGES[stage - 1]
                self.flags.set(
                    out,
                    dev,
                    "flood_stage",
                    ts,
                    True,
                    severity=SEVERITY[name],
                    title=f"道路冠水 {STAGES_JA[name]} ({name}): {depth:.0f} cm",
                    message=f"Water depth {depth:.1f} cm reached the {name} stage "
                    f"({th[stage - 1]:.0f} cm)",
                    value=depth,
                    extra={"stage": name, "stage_ja": STAGES_JA[name], "depth_cm": depth},
                )
            else:
                self.flags.set(
                    out,
                    dev,
                    "flood_stage",
                    ts,
                    False,
                    title="Flood depth below the caution stage",
                    value=depth,
                    extra={"stage": None, "depth_cm": depth},
                )
        self._rise(out, s, dev, ts, depth)

    def _late(self, s: _Sensor, t: float, depth: float) -> None:
        """A reading older than the sensor's newest (its batch was applied after the
        detector tier stopped waiting for it): newer readings already set the stage, so
        it must not move it (an older, lower depth would drop the stage and the next
        reading raise it again: a second message to residents). It joins the rise window
        in time order, so the next fit has it where it belongs."""
        if t >= s.last_t - self.cfg.rise_window_s:
            bisect.insort(s.samples, (t, depth))

    def _rise(self, out: list[Detection], s: _Sensor, dev: str, ts: datetime, depth: float) -> None:
        c = self.cfg
        t = ts.timestamp()
        samples = s.samples
        samples.append((t, depth))
        while samples[0][0] < t - c.rise_window_s:
            samples.popleft()
        # a dry road is the common case: no fit needed until there is water to rise
        if len(samples) < c.rise_min_samples or (depth < c.rise_min_depth_cm and not s.rising):
            return
        slope, intercept = _fit(samples, t)
        on = slope >= c.rise_rate_cm_per_h and depth >= c.rise_min_depth_cm
        if s.rising and slope >= c.rise_rate_cm_per_h / 2:
            on = True
        if on == s.rising:
            return
        s.rising = on
        extra: dict[str, Any] = {"rate_cm_per_h": round(slope, 2)}
        msg = f"Rising {slope:.1f} cm/h"
        if on and s.stage < 3:
            nxt = STAGES[s.stage]
            eta = max(0.0, (s.thresholds[s.stage] - intercept) / slope * 60.0)
            extra.update(next_stage=nxt, next_stage_ja=STAGES_JA[nxt], eta_min=round(eta, 1))
            msg += f"; {STAGES_JA[nxt]} ({nxt}) in about {eta:.0f} min"
        self.flags.set(
            out,
            dev,
            "flood_rising",
            ts,
            on,
            severity=Severity.MODERATE,
            title="Flood water rising fast" if on else "Flood water no longer rising fast",
            message=msg,
            value=round(slope, 2),
            extra=extra,
        )
