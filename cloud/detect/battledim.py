"""Replay BattLeDIM SCADA flows (L-Town, 5-minute inflows) through the cloud's detector engine.

The network's block balance is fed as one water block: the inflow meters (every column
except ``Timestamp`` and ``PUMP*``) minus the pump columns, which lift water out of the
block into the tank that feeds a downstream zone. The readings go through
:class:`~cloud.detect.engine.DetectorEngine`, the same streaming code the ingest calls, so
what is measured here is what runs in production. The detector sees only this flow and
its timestamps (treated as local time) and never sees dates, magnitudes or labels; the
leak file is read afterwards, only to score the alarms (:mod:`cloud.detect.leak_scoring`).

Several years can be replayed back to back (``continuous``) with the detector's state
carried across, as a city runs it; a scored period (``score_from``/``score_until``)
scores only part of the replay, e.g. a held-out half year after a warm-up.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from cloud.detect.config import DetectConfig
from cloud.detect.dataset import DatasetError
from cloud.detect.engine import DetectorEngine
from cloud.detect.leak_judge import UPDATE_EVENTS
from cloud.detect.leak_scoring import Alarm, Leak, RuleScore, both_rules
from cloud.detect.ltown_response import Response
from schemas.devices import WaterBlockValues
from schemas.wire import WaterBlockReading

BLOCK_ID = "battledim-block"
TANK_ID = "battledim-tank"  # the zone behind the pump, watched per pump cycle
ZONE_SHARE = 0.01  # a leak shows at a zone that carries more than this share of it
STEP = timedelta(minutes=5)


@dataclass(frozen=True)
class Series:
    """Timestamps and per-column flows (m³/h) of one or more SCADA files, in time order."""

    times: list[datetime]
    columns: dict[str, np.ndarray]

    def balance(self) -> np.ndarray:
        """Inflow meters minus the pump columns (the pump lifts water out of the block)."""
        out = np.zeros(len(next(iter(self.columns.values()))))
        for name, col in self.columns.items():
            out += -col if name.upper().startswith("PUMP") else col
        return out

    def zones(self) -> dict[str, np.ndarray]:
        """What the detector watches: the block's balance and, when there is a pump, the
        pumped flow into the tank zone (each zone's inflow; the per-meter split of the
        block is not a zone of its own, see docs/detectors.md)."""
        pumps = [c for n, c in self.columns.items() if n.upper().startswith("PUMP")]
        out = {BLOCK_ID: self.balance()}
        if pumps:
            out[TANK_ID] = np.sum(pumps, axis=0)
        return out


def zones_of(shares: Sequence[float]) -> frozenset[str]:
    """The devices a leak shows at, from its shares (at p227, at p235, drawn from the
    tank; ``cloud/data/ltown/leak_response.csv``): the block's balance or the tank zone's
    pump. Every L-Town pipe feeds one of them (108 pipes the tank zone, 794 the block)."""
    out = {BLOCK_ID} if shares[0] + shares[1] > ZONE_SHARE else set()
    if shares[2] > ZONE_SHARE:
        out.add(TANK_ID)
    return frozenset(out)


def with_zones(leaks: Sequence[Leak], devices: Sequence[str]) -> list[Leak]:
    """Each leak with the zone it shows in, when the replay watches both zones (with no
    pump column the block's balance sees every leak). A pipe not in the table keeps no
    zone: any device's alarm can be its."""
    if TANK_ID not in devices:
        return list(leaks)
    resp = Response.load()
    table = dict(zip(resp.links, resp.shares.tolist(), strict=True))
    return [
        dataclasses.replace(lk, zones=zones_of(table[lk.link_id])) if lk.link_id in table else lk
        for lk in leaks
    ]


@dataclass
class BattledimResult:
    start: datetime
    end: datetime
    alarms: list[Alarm]
    onset: RuleScore
    battledim: RuleScore
    sources: list[str]


def _naive(text: str, where: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)
    except ValueError as exc:
        raise DatasetError(f"{where}: bad timestamp {text!r}") from exc


def _year(path: Path) -> str | None:
    m = re.search(r"(19|20)\d\d", path.name)
    return m.group(0) if m else None


def find_files(path: Path) -> tuple[Path, Path | None]:
    """A directory holding one ``*SCADA_Flows*.csv`` (+ ``leaks*.csv``), or the flows CSV.

    When the names carry years, the leaks file must be the flows file's year: scoring one
    year's flows against another year's labels is refused, never done silently.
    """
    where = path if path.is_dir() else path.parent
    if path.is_dir():
        flows_all = sorted(path.glob("*SCADA_Flows*.csv"))
        if not flows_all:
            raise DatasetError(f"no *SCADA_Flows*.csv in {path}")
        if len(flows_all) > 1:
            names = ", ".join(p.name for p in flows_all)
            raise DatasetError(f"{path} holds several flows files ({names}); pass one of them")
        flows = flows_all[0]
    elif path.is_file():
        flows = path
    else:
        raise DatasetError(f"BattLeDIM path {path} not found")
    leaks_all = sorted(where.glob("leaks*.csv"))
    year = _year(flows)
    if year is not None and any(_year(p) for p in leaks_all):
        same = [p for p in leaks_all if _year(p) == year]
        if not same:
            names = ", ".join(p.name for p in leaks_all)
            raise DatasetError(
                f"flows file {flows.name} is year {year} but the leak files ({names}) are not"
            )
        leaks_all = same
    if len(leaks_all) > 1:
        names = ", ".join(p.name for p in leaks_all)
        raise DatasetError(f"{where} holds several leak files ({names}); keep one per year")
    return flows, leaks_all[0] if leaks_all else None


def read_flows(path: Path) -> Series:
    """Every flow column of a SCADA CSV (``Timestamp`` first), m³/h."""
    times: list[datetime] = []
    rows: list[list[float]] = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        if not header or header[0] != "Timestamp":
            raise DatasetError(f"{path}: first column must be Timestamp, got {header[:1]}")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                rows.append([float(x) for x in row[1:]])
            except ValueError as exc:
                raise DatasetError(f"{path}:{line}: bad flow value in {row!r}") from exc
            if len(rows[-1]) != len(header) - 1:
                raise DatasetError(f"{path}:{line}: {len(row)} fields, header has {len(header)}")
            times.append(_naive(row[0], f"{path}:{line}"))
    if not times:
        raise DatasetError(f"{path}: no rows")
    data = np.array(rows, dtype=float).reshape(len(rows), len(header) - 1)
    return Series(times, {h: data[:, i] for i, h in enumerate(header[1:])})


def read_leaks(path: Path) -> list[Leak]:
    out = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for line, r in enumerate(csv.DictReader(fh), start=2):
            where = f"{path}:{line}"
            kind = (r.get("leak_type") or "").strip()
            if kind not in ("abrupt", "incipient"):
                raise DatasetError(f"{where}: leak_type must be abrupt or incipient, got {kind!r}")
            start = _naive(r["start_time"], where)
            size = (r.get("size_m3h") or "").strip()
            out.append(
                Leak(
                    link_id=r["link_id"],
                    start=start,
                    end=_naive(r["end_time"], where),
                    kind=kind,
                    peak=_naive(r["peak_time"], where) if r.get("peak_time") else start,
                    size_m3h=float(size) if size else None,
                )
            )
    return out


def check_overlap(series: Series, leaks: Sequence[Leak], flows: Path, labels: Path) -> None:
    """Refuse labels whose time range misses the flows entirely (e.g. another year's)."""
    if not leaks:
        return
    a, b = series.times[0], series.times[-1]
    lo, hi = min(lk.start for lk in leaks), max(lk.end for lk in leaks)
    if hi < a or lo > b:
        raise DatasetError(
            f"leak labels {labels.name} ({lo:%Y-%m-%d} to {hi:%Y-%m-%d}) do not overlap the "
            f"flows {flows.name} ({a:%Y-%m-%d} to {b:%Y-%m-%d}); wrong year?"
        )


def load(paths: Sequence[Path]) -> tuple[Series, list[Leak], list[str]]:
    """Read one or more years, check each flows/labels pair, join them in time order."""
    times: list[datetime] = []
    cols: dict[str, list[np.ndarray]] = {}
    leaks: list[Leak] = []
    sources: list[str] = []
    for path in paths:
        flows_path, leaks_path = find_files(path)
        s = read_flows(flows_path)
        if times and s.times[0] <= times[-1]:
            raise DatasetError(
                f"{flows_path.name} starts {s.times[0]:%Y-%m-%d %H:%M}, not after the previous "
                f"file's end {times[-1]:%Y-%m-%d %H:%M}: give --continuous in time order"
            )
        if cols and set(s.columns) != set(cols):
            raise DatasetError(
                f"{flows_path.name} has columns {sorted(s.columns)}, expected {sorted(cols)}"
            )
        lk = read_leaks(leaks_path) if leaks_path else []
        if leaks_path is not None:
            check_overlap(s, lk, flows_path, leaks_path)
        times += s.times
        for name, col in s.columns.items():
            cols.setdefault(name, []).append(col)
        seen = {(x.link_id, x.start) for x in leaks}
        leaks += [x for x in lk if (x.link_id, x.start) not in seen]
        sources.append(flows_path.name + (f" + {leaks_path.name}" if leaks_path else ""))
    return Series(times, {k: np.concatenate(v) for k, v in cols.items()}), leaks, sources


def replay_config(config: DetectConfig) -> DetectConfig:
    """The deployment's settings for this data: SCADA clock in local time, the tank zone
    judged per pump cycle (unless the config already says how)."""
    leak = config.water.leak.model_copy(update={"utc_offset_h": 0.0})
    tank = config.water.leak_by_block.get(
        TANK_ID, leak.model_copy(update={"statistic": "pump_cycle"})
    )
    by_block = {**config.water.leak_by_block, TANK_ID: tank}
    by_block = {k: v.model_copy(update={"utc_offset_h": 0.0}) for k, v in by_block.items()}
    water = config.water.model_copy(update={"leak": leak, "leak_by_block": by_block})
    return config.model_copy(update={"water": water})


def replay(
    times: Sequence[datetime], flows: dict[str, np.ndarray], config: DetectConfig
) -> list[Alarm]:
    """Feed each series as a water block through the detector engine; return leak alarms.

    An alarm is a ``leak`` detection that raises an alert: a new leak (``event`` onset or
    step); a ``grown`` or ``reduced`` update of an open leak is the same alert and is not
    an alarm.
    """
    engine = DetectorEngine(replay_config(config))
    names = list(flows)
    cols = [flows[n].tolist() for n in names]
    alarms: list[Alarm] = []
    for i, ts in enumerate(times):
        batch = [
            WaterBlockReading.model_construct(
                device_id=name,
                ts=ts,
                values=WaterBlockValues.model_construct(flow=col[i], pressure=None),
            )
            for name, col in zip(names, cols, strict=True)
        ]
        for d in engine.feed(batch, {}):
            if d.kind == "leak" and d.active and d.extra.get("event") not in UPDATE_EVENTS:
                alarms.append(Alarm(d.ts, d.device_id, d.value, d.message))
    return alarms


def run(
    paths: Path | Sequence[Path],
    config: DetectConfig | None = None,
    *,
    score_from: datetime | None = None,
    score_until: datetime | None = None,
) -> BattledimResult:
    """Replay one year (or several back to back) and score it under both rules."""
    series, leaks, sources = load([paths] if isinstance(paths, Path) else list(paths))
    # the SCADA clock is read as UTC (see ``_naive``); a naive bound means the same clock
    score_from, score_until = (
        t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t
        for t in (score_from, score_until)
    )
    zones = series.zones()
    alarms = replay(series.times, zones, config or DetectConfig())
    leaks = with_zones(leaks, list(zones))
    start = max(series.times[0], score_from) if score_from else series.times[0]
    end = min(series.times[-1], score_until) if score_until else series.times[-1]
    if end <= start:
        raise DatasetError(
            f"scored period {start:%Y-%m-%d} to {end:%Y-%m-%d} is empty for flows "
            f"{series.times[0]:%Y-%m-%d} to {series.times[-1]:%Y-%m-%d}"
        )
    onset, bd = both_rules(alarms, leaks, start, end)
    return BattledimResult(start, end, alarms, onset, bd, sources)
