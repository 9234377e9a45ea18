"""Build the pilot report from the store (readings), the registry (which meter is in
which block) and the alerts table (leak alerts).

Blocks: a meter belongs to the block named by its registry ``district``; the block's
inflow is the totaliser of the ``water_block`` device registered with that same
``district`` (``akita cloud device add <id> --kind water_block --district <block>``). A
block with no such device, or more than one, gets no NRW figure and says why; meters
without a district are reported as unassigned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.models import AlertRow
from cloud.pilot import figures, queries
from cloud.pilot.figures import HOUR_MS
from schemas.wire import DeviceInfo

LEAK = "meter_leak"
UNASSIGNED = "(no district)"


@dataclass(frozen=True)
class MeterRow:
    device: str
    block: str
    hours_stored: int
    read_rate: float
    use_m3: float | None
    battery: float | None  # the last daily mean, %
    battery_slope: float | None  # % per 30 days
    leak_alerts: int


@dataclass(frozen=True)
class BlockRow:
    block: str
    meters: int
    inflow_device: str | None
    inflow_m3: float | None
    metered_m3: float
    nrw_share: float | None
    note: str = ""


@dataclass(frozen=True)
class Report:
    start: datetime
    end: datetime
    hours_expected: int
    meters: list[MeterRow]
    blocks: list[BlockRow]
    leak_alerts: int
    battery_slopes: dict[str, float] | None = None
    battery_levels: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def read_rate(self) -> float:
        expected = self.hours_expected * len(self.meters)
        return sum(m.hours_stored for m in self.meters) / expected if expected else 0.0

    @property
    def leaks_per_1000(self) -> float:
        return self.leak_alerts * 1000 / len(self.meters) if self.meters else 0.0


def period_hours(start: datetime, end: datetime) -> int:
    """Whole hours in the period; raises ValueError naming the values otherwise."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("--from/--to: give a time zone, e.g. 2026-06-01T00:00+09:00")
    span_ms = int((end - start).total_seconds() * 1000)
    if span_ms <= 0:
        raise ValueError(f"--to {end.isoformat()} is not after --from {start.isoformat()}")
    if span_ms % HOUR_MS or int(start.timestamp()) % 3600:
        raise ValueError(
            f"--from {start.isoformat()} / --to {end.isoformat()}: the period "
            "must start on the hour and last whole hours (readings are hourly)"
        )
    return span_ms // HOUR_MS


def leak_alerts(sm: sessionmaker[Session], start: datetime, end: datetime) -> dict[str, int]:
    """meter_leak alerts opened in the period, by meter."""
    stmt = select(AlertRow.device_id).where(
        AlertRow.kind == LEAK, AlertRow.started_at >= start, AlertRow.started_at < end
    )
    out: dict[str, int] = {}
    with sm() as s:
        for device in s.scalars(stmt):
            if device:
                out[device] = out.get(device, 0) + 1
    return out


def build(
    store: queries.Queries,
    devices: Mapping[str, DeviceInfo],
    leaks: Mapping[str, int],
    start: datetime,
    end: datetime,
) -> Report:
    hours = period_hours(start, end)
    from_ms, to_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    meters = {d: i for d, i in devices.items() if i.kind.value == queries.METER}
    days = queries.hours_per_day(store, from_ms, to_ms)
    stored = {d: sum(per_day.values()) for d, per_day in days.items()}
    spans = queries.meter_spans(store, days, from_ms, to_ms)
    battery = queries.daily_battery(store, from_ms, to_ms)
    rows = [
        _meter_row(
            d,
            meters[d],
            stored.get(d, 0),
            hours,
            spans.get(d),
            battery.get(d, []),
            leaks.get(d, 0),
            to_ms - from_ms,
        )
        for d in sorted(meters)
    ]
    slopes = [m.battery_slope for m in rows if m.battery_slope is not None]
    levels = [m.battery for m in rows if m.battery is not None]
    return Report(
        start,
        end,
        hours,
        rows,
        _blocks(store, devices, rows, from_ms, to_ms),
        sum(m.leak_alerts for m in rows),
        figures.distribution(slopes),
        figures.distribution(levels),
    )


def _meter_row(
    device: str,
    info: DeviceInfo,
    stored: int,
    hours: int,
    span: figures.Span | None,
    battery: list[tuple[int, float]],
    leaks: int,
    period_ms: int,
) -> MeterRow:
    return MeterRow(
        device=device,
        block=info.district or UNASSIGNED,
        hours_stored=stored,
        read_rate=min(1.0, stored / hours),
        use_m3=span.over(period_ms) if span is not None else None,
        battery=battery[-1][1] if battery else None,
        battery_slope=figures.slope_per_30d([t for t, _ in battery], [v for _, v in battery]),
        leak_alerts=leaks,
    )


def _blocks(
    store: queries.Queries,
    devices: Mapping[str, DeviceInfo],
    rows: list[MeterRow],
    from_ms: int,
    to_ms: int,
) -> list[BlockRow]:
    inlets: dict[str, list[str]] = {}
    for d, info in devices.items():
        if info.kind.value == queries.BLOCK and info.district:
            inlets.setdefault(info.district, []).append(d)
    totals = queries.spans(store, queries.BLOCK, "totaliser", from_ms, to_ms, include_start=True)
    by_block: dict[str, list[MeterRow]] = {}
    for m in rows:
        by_block.setdefault(m.block, []).append(m)
    out = []
    for block in sorted(by_block):
        members = by_block[block]
        metered = sum(m.use_m3 or 0.0 for m in members)
        unknown = sum(m.use_m3 is None for m in members)
        found = inlets.get(block, [])
        note = f"{unknown} meters without a use figure" if unknown else ""
        if block == UNASSIGNED:
            out.append(
                BlockRow(
                    block,
                    len(members),
                    None,
                    None,
                    metered,
                    None,
                    "meters without a registry district",
                )
            )
            continue
        if len(found) != 1:
            why = "no water_block device" if not found else f"{len(found)} water_block devices"
            out.append(
                BlockRow(
                    block, len(members), None, None, metered, None, f"{why} with district {block!r}"
                )
            )
            continue
        span = totals.get(found[0])
        inflow = span.over(to_ms - from_ms) if span is not None else None
        if inflow is None:
            note = f"no totaliser readings of {found[0]} in the period"
        out.append(
            BlockRow(
                block,
                len(members),
                found[0],
                inflow,
                metered,
                figures.nrw_share(inflow, metered),
                note,
            )
        )
    return out
