"""Ground-truth labels (contract C) and the ones derived by scanning the data itself.

Fault labels come from the injection; ``flood_stage`` and ``heat_wbgt`` are read off
the very values the devices report (at the export resolution), so a label exists
exactly when the data crosses the threshold, whatever the scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from firmware_sim.models.callunit import CallUnitModel
from firmware_sim.models.flood import FloodSensorModel
from firmware_sim.plan import FleetPlan
from firmware_sim.timebase import iso_ms
from firmware_sim.wbgt import DANGER_C, SEVERE_WARNING_C, indoor_wbgt
from schemas.devices import DeviceKind

FLOOD_SCAN_S = 60.0
FLOOD_HYSTERESIS = 0.8  # a stage ends when depth falls below 80 % of its depth
WBGT_HYSTERESIS_C = 1.0


@dataclass
class Label:
    kind: str
    device_id: str
    start: float
    end: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "device_id": self.device_id,
            "start": iso_ms(self.start),
            "end": None if self.end is None else iso_ms(self.end),
            "info": self.info,
        }


def _crossings(
    times: list[float], values: list[float], up: float, down: float
) -> list[tuple[float, float | None]]:
    out: list[tuple[float, float | None]] = []
    begin: float | None = None
    for t, v in zip(times, values, strict=True):
        if begin is None and v >= up:
            begin = t
        elif begin is not None and v < down:
            out.append((begin, t))
            begin = None
    if begin is not None:
        out.append((begin, None))
    return out


def flood_labels(plan: FleetPlan) -> list[Label]:
    labels = []
    n = int((plan.end - plan.start) // FLOOD_SCAN_S) + 1
    times = [plan.start + i * FLOOD_SCAN_S for i in range(n)]
    for dev in plan.of_kind(DeviceKind.FLOOD_SENSOR):
        m = dev.model
        assert isinstance(m, FloodSensorModel)
        peak = sum(s.peak for s in plan.weather.storms) * 1.15 * m.rain_factor
        if peak <= m.drain_mmh:
            continue  # the drain takes the heaviest rain: depth stays 0
        m.reset()
        depths = [m.sample(t)["depth"] for t in times]
        m.reset()
        for stage, cm in m.stages_cm.items():
            for a, b in _crossings(times, depths, cm, cm * FLOOD_HYSTERESIS):
                info = {"stage": stage, "threshold_cm": cm}
                labels.append(Label("flood_stage", dev.id, a, b, info))
    return labels


def heat_labels(plan: FleetPlan) -> list[Label]:
    labels = []
    for dev in plan.of_kind(DeviceKind.CALL_UNIT):
        m = dev.model
        assert isinstance(m, CallUnitModel)
        if m.wbgt_upper_bound(plan.start, plan.end) < SEVERE_WARNING_C:
            continue
        msgs = [x for x in m.messages(plan.start, plan.end) if x.type == "HB"]
        if not msgs:
            continue
        times = [x.t for x in msgs]
        wbgt = [indoor_wbgt(x.values["temperature"], x.values["humidity"]) for x in msgs]
        if max(wbgt) < SEVERE_WARNING_C:
            continue
        for stage, thr in (("severe_warning", SEVERE_WARNING_C), ("danger", DANGER_C)):
            for a, b in _crossings(times, wbgt, thr, thr - WBGT_HYSTERESIS_C):
                labels.append(Label("heat_wbgt", dev.id, a, b, {"stage": stage, "wbgt_c": thr}))
    return labels
