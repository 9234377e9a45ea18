"""Small line charts drawn on the server as SVG: no chart library, no JavaScript, and the
numbers are in the page as text too (first, last, min, max), so a screen reader and a
test can read what the line shows."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from cloud.console.web import jst
from cloud.errors import StoreError
from cloud.store.base import TimeSeriesStore

log = logging.getLogger(__name__)

WIDTH, HEIGHT = 640, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 12, 36


@dataclass(frozen=True)
class Chart:
    field: str
    unit: str
    points: list[tuple[datetime, float]]
    error: str | None = None

    @property
    def first(self) -> float | None:
        return self.points[0][1] if self.points else None

    @property
    def last(self) -> float | None:
        return self.points[-1][1] if self.points else None

    @property
    def low(self) -> float | None:
        return min(v for _, v in self.points) if self.points else None

    @property
    def high(self) -> float | None:
        return max(v for _, v in self.points) if self.points else None

    @property
    def trend(self) -> str:
        if len(self.points) < 2 or self.first is None or self.last is None:
            return "データ不足"
        if self.last > self.first:
            return "上昇"
        return "下降" if self.last < self.first else "横ばい"

    def svg(self, title_id: str) -> str:
        """The chart as an inline ``<svg>`` (every text escaped: only numbers and times)."""
        w, h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
        out = [
            f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
            f'role="img" aria-labelledby="{title_id}">',
            f'<rect x="{_LEFT}" y="{_TOP}" width="{w}" height="{h}" '
            'fill="#ffffff" stroke="#6b6b6b"/>',
        ]
        if len(self.points) >= 2 and self.low is not None and self.high is not None:
            t0, t1 = self.points[0][0], self.points[-1][0]
            span = (t1 - t0).total_seconds() or 1.0
            lo, hi = self.low, self.high
            if hi - lo < 1e-9:
                lo, hi = lo - 1, hi + 1
            pad = (hi - lo) * 0.1
            lo, hi = lo - pad, hi + pad

            def xy(ts: datetime, v: float) -> str:
                x = _LEFT + (ts - t0).total_seconds() / span * w
                y = _TOP + (hi - v) / (hi - lo) * h
                return f"{x:.1f},{y:.1f}"

            line = " ".join(xy(ts, v) for ts, v in self.points)
            out.append(
                f'<polyline fill="none" stroke="#0b3d91" stroke-width="2.5" points="{line}"/>'
            )
            for frac in (0.0, 0.5, 1.0):
                v = hi - (hi - lo) * frac
                y = _TOP + frac * h
                out.append(
                    f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" '
                    f'fill="#1a1a1a">{v:.1f}</text>'
                )
            for ts, anchor, x in ((t0, "start", _LEFT), (t1, "end", _LEFT + w)):
                out.append(
                    f'<text x="{x}" y="{HEIGHT - 12}" text-anchor="{anchor}" font-size="12" '
                    f'fill="#1a1a1a">{jst(ts)}</text>'
                )
            out.append(
                f'<text x="{_LEFT + 4}" y="{_TOP + 14}" font-size="12" fill="#1a1a1a">'
                f"{self.field} [{self.unit}]</text>"
            )
        else:
            out.append(
                f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" font-size="14" '
                f'fill="#1a1a1a">データがありません</text>'
            )
        out.append("</svg>")
        return "".join(out)


def load_chart(
    store: TimeSeriesStore,
    device_id: str,
    field: str,
    unit: str | None,
    start: datetime,
    end: datetime,
    window: timedelta | None = None,
) -> Chart:
    """The numeric values of one field between ``start`` and ``end`` (means per window)."""
    try:
        raw = store.series(device_id, field, start, end, window, "mean")
    except StoreError as exc:
        log.warning("console_chart_store_error device=%s field=%s reason=%s", device_id, field, exc)
        return Chart(field, unit or "", [], error="時系列データベースが応答しません。")
    points = [
        (p.ts, float(p.value))
        for p in raw
        if isinstance(p.value, int | float) and not isinstance(p.value, bool)
    ]
    return Chart(field, unit or "", points)
