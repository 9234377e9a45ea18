"""Detector thresholds and windows, one pydantic model per domain.

Every field has a documented default (see docs/detectors.md); a deployment overrides
only what it needs, e.g. ``DetectConfig.model_validate({"flood": {"stages_cm": ...}})``.
Per-device overrides come from the labelled export's ``sites`` map or from
``DetectConfig.sites`` (device id -> facts such as flood stage depths).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloud.detect.quality import QualityConfig
from schemas.kinds import KINDS, Offline


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LeakConfig(_Cfg):
    """Leak detection on one statistic per period against the block's own reference.

    Night statistics (``night_median``, ``night_min``) and ``daily_mean`` give one value
    per local day; ``pump_cycle`` (a pump that fills a tank on level control) gives the
    tank zone's mean demand over each full fill-and-draw cycle. The judge
    (:mod:`cloud.detect.leak_judge`) compares each value with the median of the recent
    leak-free demand times a learned weekday factor: a CUSUM of residuals crossing
    ``cusum_h`` robust sigmas or one period ``k_step`` sigmas up is a leak.
    """

    statistic: str = Field(
        default="night_median",
        pattern="^(night_median|night_min|daily_mean|pump_cycle)$",
        description="night_median: median flow of the night window; night_min: lowest "
        "rolling mean in it; daily_mean: mean of the whole day; pump_cycle: the flow is a "
        "tank-filling pump's, judged per full pump cycle",
    )
    utc_offset_h: float = Field(default=9.0, ge=-14, le=14, description="Local time (JST = 9)")
    night_start_h: float = Field(default=2.0, ge=0, lt=24, description="Night window start")
    night_end_h: float = Field(default=5.0, gt=0, le=24, description="Night window end")
    window_min: float = Field(default=60.0, gt=0, description="night_min: rolling window (min)")
    min_samples: int = Field(default=6, ge=1, description="Samples a night needs to count")
    learn_nights: int = Field(
        default=21, ge=3, description="Periods before the full model (reference + weekday)"
    )
    young_nights: int = Field(
        default=2, ge=1, description="Nights before the coarse young-block rule may judge"
    )
    young_rise_frac: float = Field(
        default=0.25, gt=0, description="Young rule: rise over the median night, as a fraction"
    )
    young_persist: int = Field(default=2, ge=1, description="Young rule: consecutive nights")
    history_nights: int = Field(default=56, ge=7, description="Periods kept (weekday, sigma)")
    ref_nights: int = Field(default=28, ge=3, description="Periods in the moving reference")
    k_step: float = Field(default=5.0, gt=0, description="One-period residual alarm (sigmas)")
    cusum_k: float = Field(default=1.0, ge=0, description="CUSUM slack (sigmas per period)")
    cusum_h: float = Field(default=3.5, gt=0, description="CUSUM change level (sigmas)")
    min_sigma_frac: float = Field(
        default=0.03, ge=0, description="Sigma floor as a fraction of the expected value"
    )
    min_sigma_abs: float = Field(default=0.5, ge=0, description="Sigma floor (flow units)")
    clear_frac: float = Field(
        default=0.5, ge=0, le=1, description="Clear when the excess falls below this share"
    )
    pump_on_flow: float = Field(
        default=1.0, ge=0, description="pump_cycle: flow above this means the pump runs"
    )
    day_onset_night_sigmas: float | None = Field(
        default=None,
        ge=0,
        description=(
            "A daily-mean onset is raised only if the next night also stands this many "
            "night sigmas up (None: only a night 2 sigmas below the onset's size denies "
            "it). 0.5 cuts false alarms by a third and finds fewer 1-5 m³/h leaks: "
            "docs/detectors.md"
        ),
    )


class WaterConfig(_Cfg):
    leak: LeakConfig = Field(default_factory=LeakConfig)
    leak_by_block: dict[str, LeakConfig] = Field(
        default_factory=dict,
        description="block device id -> its own leak settings (e.g. a tank zone's pump)",
    )
    # burst: flow jumps and pressure drops between two consecutive samples
    burst_flow_rise_frac: float = Field(default=0.3, gt=0, description="Flow rise vs baseline")
    burst_pressure_drop: float = Field(default=0.05, gt=0, description="Pressure drop, MPa")
    burst_baseline_alpha: float = Field(default=0.05, gt=0, le=1, description="Burst EWMA")
    burst_clear_samples: int = Field(default=6, ge=1, description="Calm samples to clear")
    pressure_low: float = Field(default=0.15, description="Low pressure alarm, MPa")
    pressure_high: float = Field(default=0.75, description="High pressure alarm, MPa")
    pressure_hysteresis: float = Field(default=0.02, ge=0, description="Clear margin, MPa")
    stuck_samples: int = Field(default=12, ge=3, description="Identical values = stuck")
    stuck_tolerance: float = Field(default=1e-9, ge=0, description="Max change still 'same'")
    flow_min: float = Field(default=-1.0, description="Plausible flow range, m³/h")
    flow_max: float = Field(default=5000.0)
    pressure_min: float = Field(default=0.0, description="Plausible pressure range, MPa")
    pressure_max: float = Field(default=1.6)
    profile_bins: int = Field(default=48, ge=4, description="Daily profile slots (30 min)")
    profile_min_days: int = Field(default=7, ge=2, description="Days before the profile judges")
    profile_history_days: int = Field(default=28, ge=3, description="Days kept per slot")
    profile_z: float = Field(default=6.0, gt=0, description="Robust z-score alarm level")
    profile_consecutive: int = Field(default=3, ge=1, description="Samples beyond z to alarm")


class PumpConfig(_Cfg):
    level_high_m: float = Field(default=2.5, description="Wet-well high level, m")
    level_hysteresis_m: float = Field(default=0.1, ge=0)
    fail_rise_m: float = Field(default=0.15, gt=0, description="Rise with no pump running, m")
    fail_start_level_m: float = Field(
        default=1.2, description="Level above which a pump should be running (start set point)"
    )
    fail_samples: int = Field(default=3, ge=1, description="Rising samples with no pump")
    fail_start_codes: tuple[int, ...] = Field(
        default=(11, 12, 19), description="PLC fault codes meaning 'commanded, did not start'"
    )
    short_cycle_window_s: float = Field(default=3600.0, gt=0, description="Short-run window")
    short_cycle_starts: int = Field(
        default=6, ge=2, description="Short runs in the window = short-cycling"
    )
    short_run_s: float = Field(
        default=90.0, gt=0, description="A run shorter than this is a short cycle"
    )
    current_min_a: float = Field(default=2.0, ge=0, description="Running pump must draw this")
    current_max_a: float = Field(default=40.0, gt=0, description="Overcurrent above this")
    current_idle_max_a: float = Field(default=1.0, ge=0, description="Stopped pump draws below")
    current_samples: int = Field(default=2, ge=1, description="Consecutive bad samples")
    imbalance_ratio: float = Field(default=2.0, gt=1, description="Run-hour delta ratio")
    imbalance_min_hours: float = Field(default=2.0, gt=0, description="Hours before judging")
    imbalance_window_h: float = Field(default=168.0, gt=0, description="Judged over (h)")


class FloodConfig(_Cfg):
    stages_cm: tuple[float, float, float] = Field(
        default=(10.0, 20.0, 30.0), description="注意 / 警戒 / 危険 depths, cm"
    )
    hysteresis_cm: float = Field(default=2.0, ge=0, description="Fall below stage - this to drop")
    rise_window_s: float = Field(default=900.0, gt=0, description="Least-squares fit window")
    rise_min_samples: int = Field(default=4, ge=3)
    rise_rate_cm_per_h: float = Field(default=6.0, gt=0, description="Rising alarm rate")
    rise_min_depth_cm: float = Field(default=3.0, ge=0, description="Ignore rises below this")

    @model_validator(mode="after")
    def _ordered(self) -> FloodConfig:
        a, b, c = self.stages_cm
        if not 0 < a < b < c:
            raise ValueError(f"flood.stages_cm must be increasing and positive, got {a},{b},{c}")
        return self


class VehicleConfig(_Cfg):
    stale_s: float = Field(default=120.0, gt=0, description="No fix for this long = stale")
    off_route_m: float = Field(default=150.0, gt=0, description="Distance to route polyline")
    off_route_samples: int = Field(default=3, ge=1, description="Consecutive samples off route")
    on_route_m: float = Field(default=100.0, gt=0, description="Back within = cleared")
    stop_speed_kmh: float = Field(default=2.0, ge=0)
    stop_radius_m: float = Field(default=30.0, gt=0)
    long_stop_s: float = Field(default=900.0, gt=0, description="Stop longer than this")
    terminal_radius_m: float = Field(
        default=300.0, ge=0, description="Stops this near a terminal or depot are layovers"
    )
    routes: dict[str, list[tuple[float, float]]] = Field(
        default_factory=dict, description="route_id -> [[lat, lon], ...]"
    )


class CallUnitConfig(_Cfg):
    heartbeat_s: float = Field(default=600.0, gt=0, description="Expected heartbeat period")
    heartbeat_missed: float = Field(default=3.0, gt=0, description="Periods missed = alarm")
    wbgt_stages: tuple[float, float, float] = Field(
        default=(25.0, 28.0, 31.0), description="警戒 / 厳重警戒 / 危険 (MoE), °C"
    )
    wbgt_hysteresis: float = Field(default=0.5, ge=0)


class MeterConfig(_Cfg):
    """Household water meters (cloud/detect/meter.py)."""

    leak_min_m3_per_h: float = Field(
        default=0.002, gt=0, description="An hour with less use than this is quiet (2 L)"
    )
    leak_hours: int = Field(default=24, ge=2, description="Busy hours in a row = leak")
    # A leak is a steady floor under the household's use; a busy household's night is
    # irregular. The lowest floor_hours hours of the window must lie within the spread.
    floor_hours: int = Field(
        default=2, ge=1, description="Lowest hours of the window that must be steady (1 = off)"
    )
    floor_spread_m3: float = Field(
        default=0.0005, ge=0, description="Steady: lowest hours within this (+0.5 L) ..."
    )
    floor_spread_frac: float = Field(
        default=0.1, ge=0, description="... or within this share of the lowest hour"
    )
    # A leak's floor persists night after night; a household busy through one night is
    # quiet again the next. The floor must be seen on floor_days separate (disjoint)
    # windows of leak_hours at one level (same spread), with no quiet hour in between.
    floor_days: int = Field(
        default=2, ge=1, description="Separate windows with the same steady floor (1 = one)"
    )
    burst_m3_per_h: float = Field(default=0.8, gt=0, description="One hour above = burst")
    reverse_min_m3: float = Field(default=0.005, gt=0, description="Reverse volume growth")
    silent_s: float = Field(default=3 * 86_400.0, gt=0, description="No reading = silent")


class CommonConfig(_Cfg):
    offline_intervals: float = Field(default=5.0, gt=0, description="Missed polls = offline")
    default_poll_s: float = Field(default=60.0, gt=0, description="When DeviceInfo has none")
    min_offline_s: float = Field(default=120.0, ge=0, description="Never offline sooner")
    # Every kind whose declaration (schemas/kinds) has an offline policy; event-driven
    # kinds (call units) use their heartbeat period when they have no poll interval.
    offline_kinds: tuple[str, ...] = Field(
        default_factory=lambda: tuple(n for n, k in KINDS.items() if k.offline is not Offline.NEVER)
    )


class DetectConfig(_Cfg):
    water: WaterConfig = Field(default_factory=WaterConfig)
    pump: PumpConfig = Field(default_factory=PumpConfig)
    flood: FloodConfig = Field(default_factory=FloodConfig)
    vehicle: VehicleConfig = Field(default_factory=VehicleConfig)
    call_unit: CallUnitConfig = Field(default_factory=CallUnitConfig)
    meter: MeterConfig = Field(default_factory=MeterConfig)
    common: CommonConfig = Field(default_factory=CommonConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    sites: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="device id -> facts (flood stage depths, set points)"
    )
