"""Score the household-meter detectors on the meter simulator's labelled households.

Glue between ``firmware_sim.meters`` (households, their labels, the meters' payloads)
and the cloud (``cloud.lpwa.codecs`` decodes each payload, ``DetectorEngine`` judges the
hours), so it lives in ``akita/``: cloud never imports the simulator.

The meters' leak and burst bits are removed before detection by default: the simulator
sets them from the truth, so scoring with them would measure the simulator, not the
consumption rules. The tamper bit stays: a magnet or an opened case is seen only by the
meter, so that bit is what ``meter_tamper`` judges. Each detector is scored per meter:
a labelled meter with its alert is found, an alert on a meter without the label is false.
For the found leaks it also gives the delay: the first ``meter_leak`` after the leak began.
"""

from __future__ import annotations

import base64
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloud.detect.config import DetectConfig
from cloud.detect.engine import DetectorEngine
from cloud.lpwa.codecs import ALARM_BITS, codec_for
from firmware_sim.meters import PROFILE, Meter, all_events, fleet
from schemas.kinds import KINDS
from schemas.wire import reading_adapter

KIND = "water_meter"
START_S = 1_780_272_000  # 2026-06-01 00:00 UTC, on the hour
NS = "ns-eval"


# alert kind -> the simulator label it is scored against
LABEL_OF = {
    "meter_leak": "leak",
    "meter_burst": "burst",
    "meter_reverse_flow": "reverse",
    "meter_tamper": "tamper",
    "device_offline": "dead",
}
JUDGED_BITS = ("leak", "burst")  # set by the simulator from the truth: removed


@dataclass(frozen=True)
class DetectorScore:
    alert: str
    labels: int  # meters with the label (dead: silent for long enough before the end)
    found: int  # of them, with the alert
    false: int  # the alert on a meter without the label

    @property
    def recall(self) -> float:
        return self.found / self.labels if self.labels else float("nan")

    @property
    def precision(self) -> float:
        raised = self.found + self.false
        return self.found / raised if raised else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {"alert": self.alert, "labels": self.labels, "found": self.found,
                "false": self.false, "recall": _num(self.recall),
                "precision": _num(self.precision)}  # fmt: skip


@dataclass(frozen=True)
class MeterScore:
    meters: int
    days: float
    seed: int
    detectors: dict[str, DetectorScore]  # by alert kind
    heavy: int  # labelled heavy users (three times the use, no leak)
    heavy_alerts: int  # meter_leak on one of them
    # hours from each found leak's start to its meter's first meter_leak, sorted
    leak_delays_h: tuple[float, ...] = ()

    @property
    def leak(self) -> DetectorScore:
        return self.detectors["meter_leak"]

    @property
    def leak_delay_h(self) -> tuple[float, float]:
        """Median and longest delay of the found leaks in hours (NaN when none)."""
        d = self.leak_delays_h
        return (statistics.median(d), d[-1]) if d else (math.nan, math.nan)

    def to_json(self) -> dict[str, Any]:
        med, worst = self.leak_delay_h
        return {"meters": self.meters, "days": self.days, "seed": self.seed,
                "heavy": self.heavy, "heavy_alerts": self.heavy_alerts,
                "leak_delay_h": {"median": _num(med), "max": _num(worst)},
                "detectors": {k: d.to_json() for k, d in self.detectors.items()}}  # fmt: skip


def _num(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 4)


def _readings(payload: bytes, keep_bits: bool) -> list[Any]:
    """The hours of one uplink as readings, as ``cloud/lpwa`` stores them."""
    event = json.loads(payload)
    hours = codec_for(PROFILE)(base64.b64decode(event["data"]))
    eui = event["deviceInfo"]["devEui"]
    out = []
    for i, h in enumerate(hours):
        values: dict[str, Any] = {"index": h.index}
        if i == len(hours) - 1:
            values.update(reverse_volume=h.reverse_volume, battery=h.battery)
            if h.alarms is not None:
                bits = dict(zip(ALARM_BITS, h.alarms, strict=True))
                values.update({k: v for k, v in bits.items() if keep_bits or k not in JUDGED_BITS})
        KINDS[KIND].values(**values)  # the same validation as the worker's
        ts = datetime.fromtimestamp(h.end_s, UTC)
        out.append({"device_id": eui, "kind": KIND, "ts": ts, "values": values})
    return [reading_adapter.validate_python(r) for r in out]


EVAL_SHARES = {"burst": 0.01, "reverse": 0.01, "tamper": 0.01}


def scenario_fleet(
    n: int, seed: int, days: float, shares: dict[str, float] | None = None
) -> list[Meter]:
    """The eval's households: the pilot's shares plus 1 % each of burst, reverse flow
    and tamper (the pilot fleets have none of those); ``shares`` replaces any of them
    (``fleet``'s keywords: leaks, heavy, dead, burst, reverse, tamper)."""
    return fleet(n, 10, seed, start_s=START_S, days=days, **{**EVAL_SHARES, **(shares or {})})


def run(
    n: int,
    *,
    days: float = 7.0,
    seed: int = 1,
    keep_bits: bool = False,
    config: DetectConfig | None = None,
    progress: Callable[[int], None] | None = None,
    shares: dict[str, float] | None = None,
) -> MeterScore:
    """Simulate ``n`` households for ``days`` and score the detections per meter;
    ``progress`` is called with the number of uplinks judged so far; ``shares`` changes
    the fleet's label shares (see :func:`scenario_fleet`)."""
    if n < 1:
        raise ValueError(f"meters: {n}, need at least 1")
    if days < 4:
        raise ValueError(f"days: {days}, need at least 4 (a meter is silent after 3 days)")
    meters = scenario_fleet(n, seed, days, shares)
    engine = DetectorEngine(config)
    raised: dict[str, set[str]] = {}
    first: dict[tuple[str, str], float] = {}  # (meter, alert) -> first onset, Unix s
    last: dict[str, float] = {}
    for done, event in enumerate(all_events(meters, NS, START_S, days, seed), 1):
        readings = _readings(event.payload, keep_bits)
        for r in readings:
            last[r.device_id] = max(last.get(r.device_id, 0.0), r.ts.timestamp())
        for d in engine.feed(readings, {}):
            if d.active:
                raised.setdefault(d.device_id, set()).add(d.kind)
                first.setdefault((d.device_id, d.kind), d.ts.timestamp())
        if progress is not None and done % 5000 == 0:
            progress(done)
    end_s = START_S + days * 86_400
    for d in engine.tick(datetime.fromtimestamp(end_s, UTC)):
        if d.active:
            raised.setdefault(d.device_id, set()).add(d.kind)
    silent_s = engine.config.meter.silent_s
    delays = sorted(
        (first[m.dev_eui, "meter_leak"] - m.leak_start_s) / 3600
        for m in meters
        if m.label == "leak" and (m.dev_eui, "meter_leak") in first
    )
    return _score(meters, raised, last, end_s, silent_s, days, seed, tuple(delays))


def _score(meters: list[Meter], raised: dict[str, set[str]], last: dict[str, float],
           end_s: float, silent_s: float, days: float, seed: int,
           delays: tuple[float, ...] = ()) -> MeterScore:  # fmt: skip
    def labelled(m: Meter, label: str) -> bool:
        if label == "dead":  # only a meter silent long enough can be found silent
            return m.label == "dead" and last.get(m.dev_eui, 0.0) + silent_s < end_s
        return m.label == label

    scores = {}
    for alert, label in LABEL_OF.items():
        mine = [m for m in meters if labelled(m, label)]
        others = [m for m in meters if m.label != label]
        scores[alert] = DetectorScore(
            alert,
            labels=len(mine),
            found=sum(alert in raised.get(m.dev_eui, ()) for m in mine),
            false=sum(alert in raised.get(m.dev_eui, ()) for m in others),
        )
    heavy = [m for m in meters if m.label == "heavy"]
    return MeterScore(
        meters=len(meters),
        days=days,
        seed=seed,
        detectors=scores,
        heavy=len(heavy),
        heavy_alerts=sum("meter_leak" in raised.get(m.dev_eui, ()) for m in heavy),
        leak_delays_h=delays,
    )
