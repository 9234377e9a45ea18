"""The pilot report's figures, computed from what the store holds (no I/O here).

- Read success: hours stored / hours expected. A meter reading is one hour (its time is
  the hour's end), so a period of N whole hours expects N readings per meter.
- Battery trend: the least-squares slope of a meter's daily mean battery, % per 30 days.
- A meter's use over the period: its index at the last stored hour minus its index at the
  first, scaled to the whole period by the hours those two readings span. The scaling
  matters for a meter that fell silent (a dead battery still passes water) and for the
  period's first hour, whose starting index no reading gives.
- Non-revenue water (NRW) of a block: (inflow - sum of its meters' use) / inflow, the
  inflow being the block inlet meter's totaliser difference, scaled the same way.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True)
class Span:
    """A counter's first and last value in the period, with their times (ms)."""

    first_ms: int
    first: float
    last_ms: int
    last: float

    def over(self, period_ms: int) -> float | None:
        """The counter's growth scaled to ``period_ms``; None when it spans no time or
        went back (a meter replaced: its use in the period is unknown)."""
        span = self.last_ms - self.first_ms
        if span <= 0 or self.last < self.first:
            return None
        return (self.last - self.first) * period_ms / span


def slope_per_30d(days_ms: list[int], values: list[float]) -> float | None:
    """Least-squares slope of ``values`` against their times, in units per 30 days."""
    if len(values) < 2:
        return None
    x = [t / DAY_MS for t in days_ms]
    mx, my = statistics.fmean(x), statistics.fmean(values)
    sxx = sum((a - mx) ** 2 for a in x)
    if sxx == 0:
        return None
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, values, strict=True))
    return sxy / sxx * 30.0


def distribution(values: list[float]) -> dict[str, float] | None:
    """min, 10th percentile, median, 90th percentile and max (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        p10 = p90 = ordered[0]
    else:
        deciles = statistics.quantiles(ordered, n=10, method="inclusive")
        p10, p90 = deciles[0], deciles[-1]
    return {
        "min": ordered[0],
        "p10": p10,
        "median": statistics.median(ordered),
        "p90": p90,
        "max": ordered[-1],
    }


def nrw_share(inflow_m3: float | None, metered_m3: float) -> float | None:
    """Non-revenue share of the inflow (0..1, negative if the meters read more)."""
    if inflow_m3 is None or inflow_m3 <= 0:
        return None
    return (inflow_m3 - metered_m3) / inflow_m3
