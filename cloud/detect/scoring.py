"""Replay a labelled export through the detectors and score them against the labels.

Matching rule (docs/detectors.md): an *onset* is a Detection with ``active=True``; for
the staged kinds (flood_stage, heat_wbgt) only a rise to a higher stage is an onset
(falling back a stage is an update of the same alert). An onset is a true positive
when it lies in ``[label.start, label.end + grace]`` of a label with the same device
and kind (staged kinds: a stage at or above the label's, since a level that jumps two
stages between samples raises one alert at the higher stage); otherwise it is a false
alarm. A label is detected when at least one onset matches it; its delay is the
first matching onset minus the label start, in seconds and in the device's samples.
``gps_dropout`` labels score ``vehicle_stale`` onsets; a ``gateway_offline`` label
(device_id = gateway) is matched by ``device_offline`` onsets of any of its devices.
Context labels (``info.context``) are not scored. Kinds no label names are reported
as alarm rates only, split into onsets inside some label (fault or context) of the
device, its gateway or the whole city (explained) and outside (unexplained).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from cloud.detect.base import Detection
from cloud.detect.config import DetectConfig
from cloud.detect.dataset import Export, Label
from cloud.detect.engine import DetectorEngine
from cloud.detect.parts import alert_domains
from schemas.wire import DeviceInfo, Reading

CITY = "city"  # device_id of city-wide context labels (heavy rain, snowfall, heat wave)
LABEL_TO_KIND = {"gps_dropout": "vehicle_stale", "gateway_offline": "device_offline"}
STAGE_RANK = {
    "flood_stage": {"caution": 1, "warning": 2, "danger": 3},
    "heat_wbgt": {"warning": 1, "severe_warning": 2, "danger": 3},
}
STAGED = frozenset(STAGE_RANK)
# an early-warning kind fired shortly before a fault label starts is explained by it
EXPLAIN_LEAD_S = 3600.0
# heat labels start at 厳重警戒 (28 °C); the 25 °C 警戒 stage has no label to match
UNSCORED_STAGES = {"heat_wbgt": frozenset({"warning"})}
DEFAULT_GRACE_S = 600.0
GRACE_S = {"leak": 86400.0, "heat_wbgt": 1800.0, "device_offline": 900.0}
# detection kind -> the device kind whose detector raises it (from cloud/detect/kinds/)
DOMAIN = alert_domains()
# Goals from the issue: the delay budget in samples (bursts, button presses) or seconds.
GOAL_SAMPLES = {"burst": 2.0, "button_press": 2.0}
GOAL_SECONDS = {"leak": 3 * 86400.0}
GOAL_RECALL = 0.95
GOAL_PRECISION = 0.9


@dataclass
class KindScore:
    kind: str
    scored: bool
    labels: int = 0
    detected: int = 0
    onsets: int = 0
    true_onsets: int = 0
    explained: int = 0
    device_days: float = 0.0
    delays_s: list[float] = field(default_factory=list)
    delays_samples: list[float] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    @property
    def false_alarms(self) -> int:
        return self.onsets - (self.true_onsets if self.scored else self.explained)

    @property
    def precision(self) -> float:
        return self.true_onsets / self.onsets if self.onsets else math.nan

    @property
    def recall(self) -> float:
        return self.detected / self.labels if self.labels else math.nan

    @property
    def fa_per_device_day(self) -> float:
        return self.false_alarms / self.device_days if self.device_days else math.nan

    def delay(self, q: str) -> tuple[float, float]:
        if not self.delays_s:
            return math.nan, math.nan
        f = np.mean if q == "mean" else (lambda a: np.percentile(a, 95))
        return float(f(self.delays_s)), float(f(self.delays_samples))

    def goal_met(self) -> bool | None:
        if not self.scored or not self.labels:
            return None
        ok = self.recall >= GOAL_RECALL and (not self.onsets or self.precision >= GOAL_PRECISION)
        if self.kind in GOAL_SAMPLES and self.delays_samples:
            ok = ok and max(self.delays_samples) <= GOAL_SAMPLES[self.kind]
        if self.kind in GOAL_SECONDS and self.delays_s:
            ok = ok and max(self.delays_s) <= GOAL_SECONDS[self.kind]
        return ok


@dataclass
class ReplayStats:
    """What scoring needs to know about the readings, gathered while replaying."""

    readings: int = 0
    kinds: dict[str, set[str]] = field(default_factory=dict)  # kind -> devices
    first: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)

    def add(self, device_id: str, kind: str, t: float) -> None:
        self.readings += 1
        devs = self.kinds.get(kind)
        if devs is None:
            devs = self.kinds[kind] = set()
        devs.add(device_id)
        if device_id not in self.first:
            self.first[device_id] = t
            self.count[device_id] = 0
        self.last[device_id] = t
        self.count[device_id] += 1

    def interval(self, device_id: str, info: DeviceInfo | None) -> float:
        """DeviceInfo.poll_interval_s, else the device's mean spacing of readings."""
        if info is not None and info.poll_interval_s:
            return float(info.poll_interval_s)
        n = self.count.get(device_id, 0)
        if n > 1:
            return (self.last[device_id] - self.first[device_id]) / (n - 1) or 1.0
        return 60.0


def replay(
    export: Export,
    config: DetectConfig | None = None,
    *,
    tick_s: float = 30.0,
    stats: ReplayStats | None = None,
) -> list[Detection]:
    """Feed the export in time order, ticking the engine every ``tick_s`` of data time.

    Readings are streamed when the export was loaded without them; ``stats`` (if given)
    collects what :func:`score` needs on the way.
    """
    engine = DetectorEngine(config, sites=export.sites, routes=export.routes)
    out: list[Detection] = []
    step = timedelta(seconds=tick_s)
    next_tick: datetime | None = None
    batch: list[Reading] = []
    batch_ts: datetime | None = None
    devices = export.devices
    for r in export.iter_readings():
        if stats is not None:
            stats.add(r.device_id, r.kind, r.ts.timestamp())
        if r.ts != batch_ts:
            if batch:
                out += engine.feed(batch, devices)
                batch = []
            batch_ts = r.ts
            if next_tick is None:
                next_tick = r.ts + step
            while next_tick <= r.ts:
                out += engine.tick(next_tick)
                next_tick += step
        batch.append(r)
    if batch:
        out += engine.feed(batch, devices)
    while next_tick is not None and next_tick <= export.end:
        out += engine.tick(next_tick)
        next_tick += step
    return out


def gather_stats(export: Export) -> ReplayStats:
    stats = ReplayStats()
    for r in export.iter_readings():
        stats.add(r.device_id, r.kind, r.ts.timestamp())
    return stats


def _gateway_of(export: Export, dev: str) -> str | None:
    g = export.sites.get(dev, {}).get("gateway") or export.sites.get(dev, {}).get("gateway_id")
    return str(g) if g else None


def _matches(export: Export, lab: Label, d: Detection, kind: str) -> bool:
    if d.kind != kind:
        return False
    if lab.kind == "gateway_offline":
        gw = _gateway_of(export, d.device_id)
        if gw is not None and gw != lab.device_id:
            return False
    elif d.device_id != lab.device_id:
        return False
    if kind in STAGED:
        rank = STAGE_RANK[kind]
        if rank.get(d.extra.get("stage") or "", 0) < rank.get(lab.info.get("stage") or "", 9):
            return False
    end = (lab.end or export.end) + timedelta(seconds=GRACE_S.get(kind, DEFAULT_GRACE_S))
    return lab.start <= d.ts <= end


def score(
    export: Export,
    detections: Iterable[Detection],
    *,
    kinds: Iterable[str] = (),
    stats: ReplayStats | None = None,
) -> dict[str, KindScore]:
    """Score every kind that has labels or onsets (plus ``kinds``, to show empty rows).

    ``stats`` from :func:`replay` saves a second pass over the readings.
    """
    stats = stats if stats is not None and stats.readings else gather_stats(export)
    onsets = [
        d
        for d in escalations(detections)
        if d.extra.get("stage") not in UNSCORED_STAGES.get(d.kind, ())
    ]
    labels = [lab for lab in export.labels if not lab.context]
    by_kind: dict[str, list[Label]] = defaultdict(list)
    for lab in labels:
        by_kind[LABEL_TO_KIND.get(lab.kind, lab.kind)].append(lab)
    seen_devices = stats.kinds
    days = max((export.end - export.start).total_seconds() / 86400.0, 1e-9)
    onsets_by_kind: dict[str, list[Detection]] = defaultdict(list)
    for d in onsets:
        onsets_by_kind[d.kind].append(d)
    # unlabelled kinds: an alarm inside any label (fault or context) of the device, its
    # gateway or the whole city ("city") is explained, not false
    fault_windows: Mapping[str, list[Label]] = _windows_by_device(export.labels)
    result: dict[str, KindScore] = {}
    for kind in sorted(set(by_kind) | set(onsets_by_kind) | set(kinds)):
        ks = KindScore(kind=kind, scored=kind in by_kind)
        domain = DOMAIN.get(kind)
        n_dev = len(seen_devices.get(domain, ())) if domain else len(export.devices)
        ks.device_days = n_dev * days
        ds = onsets_by_kind.get(kind, [])
        ks.onsets = len(ds)
        matched: set[int] = set()
        for lab in by_kind.get(kind, []):
            ks.labels += 1
            hits = [i for i, d in enumerate(ds) if _matches(export, lab, d, kind)]
            matched.update(hits)
            if hits:
                ks.detected += 1
                first = min(ds[i].ts for i in hits)
                delay = max(0.0, (first - lab.start).total_seconds())
                dev = ds[hits[0]].device_id
                ks.delays_s.append(delay)
                ks.delays_samples.append(delay / stats.interval(dev, export.devices.get(dev)))
            else:
                ks.missed.append(f"{lab.device_id}@{lab.start.isoformat()}")
        ks.true_onsets = len(matched)
        ks.explained = sum(
            1 for d in ds if _inside(fault_windows, d, export.end, _gateway_of(export, d.device_id))
        )
        result[kind] = ks
    return result


def escalations(detections: Iterable[Detection]) -> list[Detection]:
    """Onsets: active detections, and for staged kinds only the rises in stage."""
    stage: dict[tuple[str, str], int] = {}
    out = []
    for d in detections:
        if d.kind not in STAGED:
            if d.active:
                out.append(d)
            continue
        key = (d.device_id, d.kind)
        rank = STAGE_RANK[d.kind].get(d.extra.get("stage") or "", 0) if d.active else 0
        if rank > stage.get(key, 0):
            out.append(d)
        stage[key] = rank
    return out


def _windows_by_device(labels: list[Label]) -> dict[str, list[Label]]:
    out: dict[str, list[Label]] = defaultdict(list)
    for lab in labels:
        out[lab.device_id].append(lab)
    return out


def _inside(
    windows: Mapping[str, list[Label]], d: Detection, end: datetime, gateway: str | None
) -> bool:
    grace = timedelta(seconds=GRACE_S.get(d.kind, DEFAULT_GRACE_S))
    lead = timedelta(seconds=EXPLAIN_LEAD_S)
    labels = windows.get(d.device_id, []) + windows.get(CITY, [])
    if gateway:
        labels = labels + windows.get(gateway, [])
    return any(lab.start - lead <= d.ts <= (lab.end or end) + grace for lab in labels)
