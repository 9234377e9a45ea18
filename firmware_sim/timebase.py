"""Local-time helpers: Akita runs on JST (UTC+9, no daylight saving)."""

from __future__ import annotations

from datetime import UTC, datetime

JST_OFFSET_S = 9 * 3600
DAY_S = 86_400.0
HOUR_S = 3600.0


def local_hour(t: float) -> float:
    """Hour of the day in JST, 0 <= h < 24."""
    return ((t + JST_OFFSET_S) % DAY_S) / HOUR_S


def local_day(t: float) -> int:
    """Days since 1970-01-01 JST."""
    return int((t + JST_OFFSET_S) // DAY_S)


def is_weekend(t: float) -> bool:
    # 1970-01-01 was a Thursday (weekday 3).
    return (local_day(t) + 3) % 7 >= 5


def iso_ms(t: float) -> str:
    """``2026-06-01T00:00:00.000Z`` (contract C)."""
    ms = round(t * 1000)
    dt = datetime.fromtimestamp(ms // 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def jst_midnight(year: int, month: int, day: int) -> float:
    """Unix time of 00:00 JST on that date."""
    return datetime(year, month, day, tzinfo=UTC).timestamp() - JST_OFFSET_S
