"""The configured GTFS static feed, loaded safely and reloaded when it changes.

A feed that cannot be read never stops the service: the reason is logged once per
version and kept for ``/health``, and everything goes on without trip matching (or
with the last good version, when a new one is bad). The file (or, for a directory,
its newest ``.txt``) is checked for a change at most every ``check_s`` seconds; a new
version replaces the old one, gets a fresh :class:`TripMatcher` and is handed to the
listeners (the off-route detector's routes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloud.opendata.gtfs_static import GtfsError, GtfsStatic
from cloud.opendata.matching import MatchConfig, TripMatcher

log = logging.getLogger(__name__)


def feed_mtime(path: Path) -> float:
    if path.is_dir():
        return max((p.stat().st_mtime for p in path.glob("*.txt")), default=0.0)
    return path.stat().st_mtime


@dataclass
class FeedSource:
    path: Path | None
    check_s: float = 5.0
    match: MatchConfig = field(default_factory=MatchConfig)
    listeners: list[Callable[[GtfsStatic], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._static: GtfsStatic | None = None
        self._matcher: TripMatcher | None = None
        self._mtime: float | None = None
        self._checked = -float("inf")
        self.error: str | None = None
        self.loaded_at: datetime | None = None
        self.reloads = 0

    def get(self) -> GtfsStatic | None:
        """The current feed (None without one), after a reload if the file changed."""
        self._maybe_reload()
        return self._static

    def matcher(self) -> TripMatcher | None:
        self._maybe_reload()
        return self._matcher

    def _maybe_reload(self) -> None:
        if self.path is None:
            return
        now = time.monotonic()
        with self._lock:
            if now - self._checked < self.check_s:
                return
            self._checked = now
            try:
                mtime = feed_mtime(self.path)
            except OSError as exc:
                self._fail(None, f"cannot read {self.path}: {exc.strerror or exc}")
                return
            if mtime == self._mtime:
                return
            try:
                static = GtfsStatic.load(self.path)
            except (GtfsError, OSError) as exc:
                self._fail(mtime, str(exc))
                return
            self._static, self._mtime, self.error = static, mtime, None
            matcher = TripMatcher(static, self.match, created=datetime.now(UTC))
            matcher.prepare()
            self._matcher = matcher
            self.loaded_at = datetime.now(UTC)
            self.reloads += 1
            listeners = list(self.listeners)
        log.info(
            "gtfs_static_loaded path=%s version=%s encoding=%s trips=%d interpolated=%d",
            self.path,
            static.feed_version,
            static.encoding,
            static.trip_count(),
            static.interpolated_stop_times,
        )
        for listener in listeners:
            try:
                listener(static)
            except Exception:  # a listener's bug must not unload a good feed
                log.exception("gtfs_static_listener_failed path=%s", self.path)

    def _fail(self, mtime: float | None, reason: str) -> None:
        if reason != self.error:  # once per bad version, not once per request
            keeping = "previous version kept" if self._static else "no trip matching"
            log.error("gtfs_static_unusable path=%s reason=%r %s", self.path, reason, keeping)
        self.error = reason
        self._mtime = mtime  # the same bad version is not read again; a new one is

    def status(self) -> dict[str, Any]:
        """For ``/health``: ok is None when no feed is configured."""
        self._maybe_reload()
        s = self._static
        return {
            "ok": None if self.path is None else (s is not None and self.error is None),
            "detail": {
                "path": self.path.name if self.path else None,
                "feed_version": s.feed_version if s else None,
                "encoding": s.encoding if s else None,
                "trips": s.trip_count() if s else 0,
                "interpolated_stop_times": s.interpolated_stop_times if s else 0,
                "loaded_at": self.loaded_at.isoformat() if self.loaded_at else None,
                "error": self.error,
                "trip_matching": s is not None,
            },
        }
