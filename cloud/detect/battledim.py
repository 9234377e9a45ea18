"""Replay BattLeDIM SCADA flows (L-Town, 5-minute inflows) through the water-block leak detector.

The network's block balance is fed as one water block: the inflow meters (every column
except ``Timestamp`` and ``PUMP*``) minus the pump columns, which lift water out of the
block into the tank that feeds a downstream zone. The detector sees only this flow and
its timestamps (treated as local time): it learns the block's night-flow baseline as it
goes and never sees dates, magnitudes or labels. The leak file is read afterwards, only
to score the alarms.

Scoring rule: an alarm is a ``leak`` detection with ``active=True`` (a new leak or a
further step while one is open). Taken in time order, each alarm credits the most
recently started leak that is running at that moment and not yet found; an alarm while
no leak runs is a false alarm; an alarm while every running leak is already found is a
repeat (neither). Abrupt goal: found within 2 days of its start. Incipient goal: found
before its peak time.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cloud.detect.base import Detection
from cloud.detect.config import DetectConfig
from cloud.detect.dataset import DatasetError
from cloud.detect.water import WaterDetector

BLOCK_ID = "battledim-block"
ABRUPT_BUDGET = timedelta(days=2)
DAYS_PER_MONTH = 30.44


@dataclass(frozen=True)
class Leak:
    link_id: str
    start: datetime
    end: datetime
    kind: str  # abrupt | incipient
    peak: datetime


@dataclass
class LeakResult:
    leak: Leak
    found_at: datetime | None = None

    @property
    def delay(self) -> timedelta | None:
        return self.found_at - self.leak.start if self.found_at else None

    @property
    def goal_met(self) -> bool:
        if self.found_at is None:
            return False
        if self.leak.kind == "abrupt":
            return self.found_at - self.leak.start <= ABRUPT_BUDGET
        return self.found_at <= self.leak.peak


@dataclass
class BattledimResult:
    start: datetime
    end: datetime
    alarms: list[Detection]
    leaks: list[LeakResult]
    false_alarms: list[Detection]
    repeats: int

    @property
    def months(self) -> float:
        return (self.end - self.start).total_seconds() / 86400.0 / DAYS_PER_MONTH

    @property
    def false_alarms_per_month(self) -> float:
        return len(self.false_alarms) / self.months if self.months else 0.0

    def count(self, kind: str) -> tuple[int, int]:
        rows = [r for r in self.leaks if r.leak.kind == kind]
        return sum(r.goal_met for r in rows), len(rows)


def _naive(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)
    except ValueError as exc:
        raise DatasetError(f"bad BattLeDIM timestamp {text!r}") from exc


def find_files(path: Path) -> tuple[Path, Path | None]:
    """A directory (``*SCADA_Flows.csv`` + ``leaks_*.csv``) or the flows CSV itself."""
    if path.is_dir():
        flows = sorted(path.glob("*SCADA_Flows*.csv"))
        if not flows:
            raise DatasetError(f"no *SCADA_Flows*.csv in {path}")
        leaks = sorted(path.glob("leaks*.csv"))
        return flows[0], leaks[0] if leaks else None
    if not path.is_file():
        raise DatasetError(f"BattLeDIM path {path} not found")
    leaks = sorted(path.parent.glob("leaks*.csv"))
    return path, leaks[0] if leaks else None


def read_flows(path: Path) -> tuple[list[datetime], list[float]]:
    """Timestamps and block-balance flow (inflows minus PUMP* columns), m³/h."""
    times: list[datetime] = []
    flows: list[float] = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader)]
        if not header or header[0] != "Timestamp":
            raise DatasetError(f"{path}: first column must be Timestamp, got {header[:1]}")
        signs = [-1.0 if h.upper().startswith("PUMP") else 1.0 for h in header[1:]]
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                vals = [float(x) for x in row[1:]]
            except ValueError as exc:
                raise DatasetError(f"{path}:{line}: bad flow value in {row!r}") from exc
            times.append(_naive(row[0]))
            flows.append(sum(s * v for s, v in zip(signs, vals, strict=True)))
    return times, flows


def read_leaks(path: Path) -> list[Leak]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return [
            Leak(
                link_id=r["link_id"],
                start=_naive(r["start_time"]),
                end=_naive(r["end_time"]),
                kind=r["leak_type"].strip(),
                peak=_naive(r.get("peak_time") or r["start_time"]),
            )
            for r in csv.DictReader(fh)
        ]


def detect(times: list[datetime], flows: list[float], config: DetectConfig) -> list[Detection]:
    """Run the water-block detector over the series; return its leak detections."""
    # the SCADA clock is local time already: no offset
    leak_cfg = config.water.leak.model_copy(update={"utc_offset_h": 0.0})
    water = WaterDetector(config.water.model_copy(update={"leak": leak_cfg}))
    out: list[Detection] = []
    for ts, flow in zip(times, flows, strict=True):
        water.feed_one(out, BLOCK_ID, ts, flow, None)
    return [d for d in out if d.kind == "leak"]


def score(
    alarms: list[Detection], leaks: list[Leak], start: datetime, end: datetime
) -> BattledimResult:
    results = [LeakResult(lk) for lk in leaks]
    onsets = sorted((d for d in alarms if d.active), key=lambda d: d.ts)
    false_alarms: list[Detection] = []
    repeats = 0
    for d in onsets:
        running = [r for r in results if r.leak.start <= d.ts <= r.leak.end]
        if not running:
            false_alarms.append(d)
            continue
        open_ = [r for r in running if r.found_at is None]
        if not open_:
            repeats += 1
            continue
        max(open_, key=lambda r: r.leak.start).found_at = d.ts
    return BattledimResult(start, end, onsets, results, false_alarms, repeats)


def run(path: Path, config: DetectConfig | None = None) -> BattledimResult:
    flows_path, leaks_path = find_files(path)
    times, flows = read_flows(flows_path)
    if not times:
        raise DatasetError(f"{flows_path}: no rows")
    alarms = detect(times, flows, config or DetectConfig())
    leaks = read_leaks(leaks_path) if leaks_path else []
    return score(alarms, leaks, times[0], times[-1])
