"""The pilot report's stored figures: one series per row and report length, whatever
the period (a daily report must not add series per day)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.pilot.points import points
from cloud.pilot.report import BlockRow, MeterRow, Report


def _report(end: datetime, days: int) -> Report:
    meters = [
        MeterRow(f"m{i:02d}", "b1", 24 * days, 1.0, 3.0, 80.0, -0.3, i % 2) for i in range(10)
    ]
    blocks = [BlockRow("b1", 10, "inlet-b1", 40.0, 30.0, 0.25)]
    return Report(end - timedelta(days=days), end, 24 * days, meters, blocks, 5)


def _series(report: Report) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {(p.measurement, tuple(sorted(p.tags.items()))) for p in points(report)}


def test_reports_of_one_length_reuse_their_series_and_keep_their_start() -> None:
    day = datetime(2026, 6, 30, 15, tzinfo=UTC)
    first, next_day = _report(day, 30), _report(day + timedelta(days=1), 30)
    assert _series(first) == _series(next_day)  # no new series per daily run
    assert len(_series(first)) == 1 + 1 + 10
    # a 7-day report ending the same day stays apart, and says when its period began
    weekly = _report(day, 7)
    assert not _series(weekly) & _series(first)
    starts = {p.fields["period_start_s"] for p in points(weekly)}
    assert starts == {(day - timedelta(days=7)).timestamp()}
    assert {p.ts for p in points(weekly)} == {day}
