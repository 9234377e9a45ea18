"""Score the household-meter detectors on the meter simulator's labelled households.

Glue between ``firmware_sim.meters`` (households, their labels, the meters' payloads)
and the cloud (``cloud.lpwa.codecs`` decodes each payload, ``DetectorEngine`` judges the
hours), so it lives in ``akita/``: cloud never imports the simulator.

The meters' own alarm bits are removed before detection by default: the simulator sets
the leak bit from the truth, so scoring with it would measure the simulator, not the
consumption rule. Only what a meter reports (index, reverse volume) is judged.
"""

from __future__ import annotations

import base64
import json
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


@dataclass(frozen=True)
class MeterScore:
    meters: int
    leaks: int  # labelled leak households
    found: int  # of them, with a meter_leak alert
    false: int  # meter_leak on a household without a leak
    heavy: int  # labelled heavy users (three times the use, no leak)
    heavy_alerts: int  # meter_leak on one of them
    silent_due: int  # dead meters silent for 3 days before the end
    silent_found: int
    silent_false: int  # device_offline on a meter that kept speaking

    @property
    def recall(self) -> float:
        return self.found / self.leaks if self.leaks else 1.0

    @property
    def precision(self) -> float:
        raised = self.found + self.false
        return self.found / raised if raised else 1.0


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
            if keep_bits and h.alarms is not None:
                values.update(zip(ALARM_BITS, h.alarms, strict=True))
        KINDS[KIND].values(**values)  # the same validation as the worker's
        ts = datetime.fromtimestamp(h.end_s, UTC)
        out.append({"device_id": eui, "kind": KIND, "ts": ts, "values": values})
    return [reading_adapter.validate_python(r) for r in out]


def run(
    n: int,
    *,
    days: float = 7.0,
    seed: int = 1,
    keep_bits: bool = False,
    config: DetectConfig | None = None,
) -> MeterScore:
    """Simulate ``n`` households for ``days`` and score the detections per meter."""
    meters = fleet(n, 10, seed, start_s=START_S, days=days)
    engine = DetectorEngine(config)
    raised: dict[str, set[str]] = {}
    last: dict[str, float] = {}
    for event in all_events(meters, NS, START_S, days, seed):
        readings = _readings(event.payload, keep_bits)
        for r in readings:
            last[r.device_id] = max(last.get(r.device_id, 0.0), r.ts.timestamp())
        for d in engine.feed(readings, {}):
            if d.active:
                raised.setdefault(d.device_id, set()).add(d.kind)
    end_s = START_S + days * 86_400
    for d in engine.tick(datetime.fromtimestamp(end_s, UTC)):
        if d.active:
            raised.setdefault(d.device_id, set()).add(d.kind)
    return _score(meters, raised, last, end_s, engine.config.meter.silent_s)


def _score(
    meters: list[Meter],
    raised: dict[str, set[str]],
    last: dict[str, float],
    end_s: float,
    silent_s: float,
) -> MeterScore:
    def has(m: Meter, kind: str) -> bool:
        return kind in raised.get(m.dev_eui, set())

    leaks = [m for m in meters if m.label == "leak"]
    heavy = [m for m in meters if m.label == "heavy"]
    due = [m for m in meters if m.label == "dead" and last.get(m.dev_eui, 0) + silent_s < end_s]
    return MeterScore(
        meters=len(meters),
        leaks=len(leaks),
        found=sum(has(m, "meter_leak") for m in leaks),
        false=sum(has(m, "meter_leak") for m in meters if m.label != "leak"),
        heavy=len(heavy),
        heavy_alerts=sum(has(m, "meter_leak") for m in heavy),
        silent_due=len(due),
        silent_found=sum(has(m, "device_offline") for m in due),
        silent_false=sum(has(m, "device_offline") for m in meters if m.label != "dead"),
    )
