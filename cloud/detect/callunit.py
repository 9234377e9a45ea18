"""Emergency-call units: button press (immediate), missing heartbeat, indoor heat (WBGT).

Indoor WBGT is estimated from room temperature Ta (°C) and relative humidity RH (%)
with the no-solar-load regression of 小野雅司 (Ono) et al. behind the indoor WBGT chart
of the Japanese Society of Biometeorology, 「日常生活における熱中症予防指針」
(室内用 WBGT 簡易推定図), which the Ministry of the Environment heat-illness pages
(環境省 熱中症予防情報サイト) reproduce:

    WBGT = 0.725·Ta + 0.0368·RH + 0.00364·Ta·RH − 3.246

The simulator (``firmware_sim.wbgt``) labels with the same formula, so a label and a
detection agree on when a stage is crossed.

Stages are the MoE / Japanese Society of Biometeorology daily-life guideline:
25 警戒 (warning), 28 厳重警戒 (severe warning), 31 危険 (danger).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cloud.detect.base import Detection, DeviceContext
from cloud.detect.common import OfflineDetector
from cloud.detect.config import CallUnitConfig, CommonConfig
from cloud.detect.flags import Flags
from schemas.alert import Severity
from schemas.wire import Reading

WBGT_STAGES = ("warning", "severe_warning", "danger")
WBGT_STAGES_JA = {"warning": "警戒", "severe_warning": "厳重警戒", "danger": "危険"}
WBGT_SEVERITY = {
    "warning": Severity.MODERATE,
    "severe_warning": Severity.SEVERE,
    "danger": Severity.EXTREME,
}


def indoor_wbgt(temp_c: float, rh_pct: float) -> float:
    """Indoor WBGT (°C) from air temperature and relative humidity (no solar load)."""
    return 0.725 * temp_c + 0.0368 * rh_pct + 0.00364 * temp_c * rh_pct - 3.246


class CallUnitDetector:
    name = "call_unit"

    def __init__(self, config: CallUnitConfig, common: CommonConfig) -> None:
        self.cfg = config
        self.flags = Flags(self.name, public_kinds=frozenset({"heat_wbgt"}))
        self.heartbeat = OfflineDetector(
            common,
            kind="heartbeat_missing",
            title="Call unit heartbeat missing",
            severity=Severity.SEVERE,
            name="call_unit.heartbeat",
        )
        self.stage: dict[str, int] = {}
        self.climate: dict[str, list[float | None]] = {}
        # per unit: the newest button press and the newest climate reading (epoch s)
        self.pressed_at: dict[str, float] = {}
        self.climate_at: dict[str, float] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # checkpoints written before these existed restore without them
        self.__dict__.update({"pressed_at": {}, "climate_at": {}, **state})

    def feed(self, readings: Sequence[Reading], devices: DeviceContext) -> list[Detection]:
        out: list[Detection] = []
        for r in readings:
            info = devices.get(r.device_id)
            self.feed_one(out, r.device_id, r.ts, r.values, info.poll_interval_s if info else None)
        return out

    def feed_one(
        self, out: list[Detection], dev: str, ts: datetime, v: Any, period_s: float | None = None
    ) -> None:
        c = self.cfg
        limit = c.heartbeat_missed * (period_s or c.heartbeat_s)
        self.heartbeat.seen(out, dev, ts.timestamp(), ts, period_s, limit_s=limit)
        ev = v.event
        t = ts.timestamp()
        if ev == "button":
            # always raised, even late: an emergency call is never dropped
            self.pressed_at[dev] = max(t, self.pressed_at.get(dev, t))
            self.flags.set(
                out,
                dev,
                "button_press",
                ts,
                True,
                severity=Severity.EXTREME,
                title="緊急通報ボタン (emergency button pressed)",
                message=f"Emergency button pressed on call unit {dev}",
                force=True,
            )
        elif ev == "cancel" and t >= self.pressed_at.get(dev, float("-inf")):
            # a cancel older than the newest press (its batch was applied late, after the
            # detector tier stopped waiting for it) must not close that newer call
            self.flags.set(out, dev, "button_press", ts, False, title="Call cancelled by resident")
        if t < self.climate_at.get(dev, float("-inf")):
            return  # an older room reading: the newer ones set the heat stage
        cl = self.climate.setdefault(dev, [None, None])
        if v.temperature is not None or v.humidity is not None:
            self.climate_at[dev] = t
        if v.temperature is not None:
            cl[0] = v.temperature
        if v.humidity is not None:
            cl[1] = v.humidity
        if (
            cl[0] is not None
            and cl[1] is not None
            and (v.temperature is not None or v.humidity is not None)
        ):
            self._heat(out, dev, ts, indoor_wbgt(cl[0], cl[1]))

    def _heat(self, out: list[Detection], dev: str, ts: datetime, wbgt: float) -> None:
        c = self.cfg
        cur = self.stage.get(dev, 0)
        up = sum(1 for x in c.wbgt_stages if wbgt >= x)
        down = sum(1 for x in c.wbgt_stages if wbgt >= x - c.wbgt_hysteresis)
        stage = up if up > cur else min(cur, down)
        if stage == cur:
            return
        self.stage[dev] = stage
        if stage:
            name = WBGT_STAGES[stage - 1]
            self.flags.set(
                out,
                dev,
                "heat_wbgt",
                ts,
                True,
                severity=WBGT_SEVERITY[name],
                title=f"熱中症 {WBGT_STAGES_JA[name]}: 室内WBGT {wbgt:.1f}°C",
                message=f"Estimated indoor WBGT {wbgt:.1f} °C ({name})",
                value=round(wbgt, 2),
                extra={"stage": name, "stage_ja": WBGT_STAGES_JA[name], "wbgt": round(wbgt, 2)},
            )
        else:
            self.flags.set(
                out, dev, "heat_wbgt", ts, False, title="Indoor WBGT below 25 °C", value=wbgt
            )

    def tick(self, now: datetime) -> list[Detection]:
        return self.heartbeat.tick(now)
