"""The pilot report as JSON, CSV (one file per table) and a rich summary."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cloud.pilot.report import Report


def as_dict(report: Report) -> dict[str, Any]:
    return {
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "hours_expected": report.hours_expected,
        "meters": len(report.meters),
        "read_success_rate": report.read_rate,
        "leak_alerts": report.leak_alerts,
        "leak_alerts_per_1000_meters": report.leaks_per_1000,
        "battery_slope_pct_per_30d": report.battery_slopes,
        "battery_level_pct": report.battery_levels,
        "blocks": [dataclasses.asdict(b) for b in report.blocks],
        "per_meter": [dataclasses.asdict(m) for m in report.meters],
    }


def write(report: Report, out: Path) -> list[Path]:
    """``pilot-report.json``, ``pilot-meters.csv`` and ``pilot-blocks.csv`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "pilot-report.json", out / "pilot-meters.csv", out / "pilot-blocks.csv"]
    paths[0].write_text(json.dumps(as_dict(report), indent=1, ensure_ascii=False) + "\n")
    _csv(paths[1], [dataclasses.asdict(m) for m in report.meters])
    _csv(paths[2], [dataclasses.asdict(b) for b in report.blocks])
    return paths


def _csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        if not rows:
            return
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f} %"


def _m3(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}"


def show(report: Report, console: Console) -> None:
    console.print(
        f"[bold]Pilot report[/bold] {report.start.isoformat()} -> "
        f"{report.end.isoformat()} ({report.hours_expected} h)"
    )
    console.print(
        f"meters {len(report.meters)}, read success {_pct(report.read_rate)}, "
        f"meter_leak alerts {report.leak_alerts} "
        f"({report.leaks_per_1000:.1f} per 1,000 meters)"
    )
    for name, dist in (
        ("battery slope, % per 30 days", report.battery_slopes),
        ("battery level, %", report.battery_levels),
    ):
        if dist:
            console.print(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in dist.items()))
    table = Table(title="Non-revenue water by block")
    for col in ("block", "meters", "inflow m³", "metered m³", "NRW", "note"):
        table.add_column(col)
    for b in report.blocks:
        table.add_row(
            b.block, str(b.meters), _m3(b.inflow_m3), _m3(b.metered_m3), _pct(b.nrw_share), b.note
        )
    console.print(table)
    worst = sorted(report.meters, key=lambda m: m.read_rate)[:5]
    if worst and worst[0].read_rate < 1.0:
        console.print(
            "lowest read success: " + ", ".join(f"{m.device} {_pct(m.read_rate)}" for m in worst)
        )
